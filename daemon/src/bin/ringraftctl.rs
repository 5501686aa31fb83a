//! ringraftctl: see `ringraft_daemon::ctl`.

fn main() -> std::process::ExitCode {
    ringraft_daemon::ctl::main()
}
