# Sourced by packaging/build-deb.sh and bindings/python/build-wheel.sh: what a package is made
# of. Needs `die` defined and the script's arguments; sets
#   build         1 to run cargo first, 0 for --no-build (package what is there)
#   profile       release, or debug with RINGRAFT_PACKAGE_PROFILE=debug (the test command's
#                 choice, to spare CI a second full compile; the packaging is the same)
#   profile_flag  cargo's flag for that profile (an array)
# usage: parse_build_choice USAGE "$@"
parse_build_choice() {
  local usage=$1
  shift
  build=1
  case "${1:-}" in
    "") ;;
    --no-build) build=0 ;;
    *) die "unknown argument '$1' (usage: $usage [--no-build])" ;;
  esac
  profile=${RINGRAFT_PACKAGE_PROFILE:-release}
  case "$profile" in
    release) profile_flag=(--release) ;;
    debug) profile_flag=() ;;
    *) die "RINGRAFT_PACKAGE_PROFILE must be release or debug, not '$profile'" ;;
  esac
}
