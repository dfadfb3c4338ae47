#pragma once
/// \file
/// `Result<T>`: the value or an `Error`, returned at every fallible boundary.

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include "nicsync/core/error.hpp"

namespace nicsync {

template <class T = void>
using Result = boost::system::result<T, Error>;

/// Found by ADL when `Result::value()` is called on an error: throws `std::system_error`
/// carrying the code and message (the message never holds secret material).
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace nicsync
