// nicsyncd: all logic lives in the nicsync library; main only hands over.
#include "nicsync/app/cli.hpp"

int main(int argc, char** argv) { return nicsync::app::run_cli(argc, argv); }
