# The Debian package nicsync_<version>_<arch>.deb, made by `cpack -G DEB` from a build tree
# (scripts/package does it for the release build). Included from the top-level CMakeLists.txt.
#
# The package is put together from two install components:
#   daemon  /usr/sbin/nicsyncd (stripped by cpack) and the manual pages nicsyncd(8) and
#           nicsyncd.toml(5), which `cmake --install` installs too;
#   deb     everything laid out for Debian, below; EXCLUDE_FROM_ALL, so `cmake --install`
#           leaves it out and keeps its own layout (component prefix-files in CMakeLists.txt,
#           which rewrites the unit for the install prefix and is not in the package).
# cpack installs them with DESTDIR set to its staging directory and the prefix /usr
# (CPACK_SET_DESTDIR), so /etc/nicsync is /etc/nicsync and the unit names /usr/sbin/nicsyncd.
# Its checks are the ctest label "package" (tests/package).

set(NICSYNC_DEB_MAINTAINER "nicsync maintainers <maintainers@users.noreply.b-seed-449f4a55.example>"
    CACHE STRING "Maintainer field of the Debian package")

set(nicsync_deb_source ${PROJECT_SOURCE_DIR}/scripts/deb)
set(nicsync_deb_build ${PROJECT_BINARY_DIR}/deb)

# Manual pages, changelog and README, compressed as Debian wants them (gzip -9n: no name, no
# time). nicsyncd.toml(5) takes its KEYS section from README.md's configuration table.
configure_file(${nicsync_deb_source}/nicsyncd.8.in ${nicsync_deb_build}/nicsyncd.8 @ONLY)
add_custom_command(
  OUTPUT ${nicsync_deb_build}/nicsyncd.toml.5
  COMMAND ${CMAKE_COMMAND} -DREADME=${PROJECT_SOURCE_DIR}/README.md
          -DTEMPLATE=${nicsync_deb_source}/nicsyncd.toml.5.in -DVERSION=${PROJECT_VERSION}
          -DOUTPUT=${nicsync_deb_build}/nicsyncd.toml.5 -P ${nicsync_deb_source}/manpage.cmake
  DEPENDS ${PROJECT_SOURCE_DIR}/README.md ${nicsync_deb_source}/nicsyncd.toml.5.in
          ${nicsync_deb_source}/manpage.cmake
  COMMENT "Writing nicsyncd.toml(5) from README.md"
  VERBATIM)
set(nicsync_deb_gzipped)
foreach(pair IN ITEMS "${nicsync_deb_build}/nicsyncd.8|nicsyncd.8.gz"
                      "${nicsync_deb_build}/nicsyncd.toml.5|nicsyncd.toml.5.gz"
                      "${nicsync_deb_source}/changelog|changelog.gz"
                      "${PROJECT_SOURCE_DIR}/README.md|README.md.gz")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 input)
  list(GET pair 1 output)
  add_custom_command(
    OUTPUT ${nicsync_deb_build}/${output}
    COMMAND sh -c "gzip -9nc \"$0\" > \"$1\"" ${input} ${nicsync_deb_build}/${output}
    DEPENDS ${input}
    VERBATIM)
  list(APPEND nicsync_deb_gzipped ${nicsync_deb_build}/${output})
endforeach()
add_custom_target(nicsync_deb_files ALL DEPENDS ${nicsync_deb_gzipped})
install(FILES ${nicsync_deb_build}/nicsyncd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT daemon)
install(FILES ${nicsync_deb_build}/nicsyncd.toml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5 COMPONENT daemon)

# Relative destinations are under the prefix, /usr in the package. The unit is installed as
# written: it names /usr/sbin/nicsyncd and /etc/nicsync, where the package puts them.
set(deb COMPONENT deb EXCLUDE_FROM_ALL)
set(systemd_dir ${PROJECT_SOURCE_DIR}/systemd)
install(FILES ${systemd_dir}/nicsyncd.service DESTINATION lib/systemd/system ${deb})
install(FILES ${systemd_dir}/nicsync.sysusers DESTINATION lib/sysusers.d RENAME nicsync.conf ${deb})
install(FILES ${systemd_dir}/nicsync.tmpfiles DESTINATION lib/tmpfiles.d RENAME nicsync.conf ${deb})
# The example as a conffile (scripts/deb/conffiles). The unit waits for nicsyncd.toml, which the
# operator writes and no file of the package claims, so dpkg never touches it.
install(FILES ${PROJECT_SOURCE_DIR}/config/nicsyncd.toml
        DESTINATION /etc/nicsync RENAME nicsyncd.toml.example ${deb})
install(FILES ${nicsync_deb_source}/copyright ${nicsync_deb_build}/changelog.gz
              ${nicsync_deb_build}/README.md.gz
        DESTINATION share/doc/nicsync ${deb})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME nicsync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "NIC e-invoicing API credentials from Vault to ClearTax")
set(CPACK_PACKAGE_DESCRIPTION
    "nicsyncd watches HashiCorp Vault for new versions of the NIC e-invoicing API
credentials (username and password) of GST registrations (GSTINs) and delivers
each to the providers that use it, first of all ClearTax, once in effect: a
ledger records every push, failures are retried with backoff, and a crash
repeats at most the push that was in flight.

It runs under systemd as the nicsync user and reports through a health and
status API and Prometheus metrics.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${NICSYNC_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# nicsync_<version>_<arch>.deb. No Debian revision: the packaging lives in this source tree,
# so this is a native package versioned with the project (scripts/deb/changelog).
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The libraries the daemon links, as dpkg-shlibdeps finds them; and what the postinst runs
# to create the user (systemd-sysusers), as debhelper's sysusers snippet would require.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-standalone-sysusers | systemd-sysusers")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${nicsync_deb_source}/conffiles ${nicsync_deb_source}/postinst
    ${nicsync_deb_source}/prerm ${nicsync_deb_source}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# The binary is stripped and its debug symbols are left out rather than put in a -dbgsym
# package: the release build's are over 200 MB (the stripped binary is 5.5 MB), which would take
# minutes to compress in every package build, and the daemon forbids core dumps (LimitCORE=0,
# PR_SET_DUMPABLE=0), so there is little for them to serve. To debug, use build/release/nicsyncd
# of the same commit.
set(CPACK_STRIP_FILES ON)
# DESTDIR staging with the prefix /usr (CPACK_INSTALL_PREFIX is the prefix in this mode).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_CMAKE_PROJECTS
    "${PROJECT_BINARY_DIR};${PROJECT_NAME};daemon;/"
    "${PROJECT_BINARY_DIR};${PROJECT_NAME};deb;/")
include(CPack)

# lintian (tests/package) finds no error and no warning. At info level (lintian -I) it notes:
#   hardening-no-bindnow, hardening-no-fortify-functions: the package is built with the release
#     preset's flags (-O2 -g), not dpkg-buildflags'; adding -D_FORTIFY_SOURCE=2 and -Wl,-z,now
#     to the release build is a decision for every build, benchmarks included, not the package's;
#   binary-has-unneeded-section .comment: plain strip keeps the compiler's version note;
#   package-supports-alternative-init-but-no-init.d-script: the daemon is for systemd only.
