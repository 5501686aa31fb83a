//! Every argument of every ringraftctl command has help text: walks the whole clap tree.

use ringraft_daemon::ctl::cli;

fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
    let path = format!("{path} {}", command.get_name());
    if command.get_about().is_none() && command.get_long_about().is_none() {
        found.push(format!("{path} (the command itself)"));
    }
    for arg in command.get_arguments() {
        let help = arg.get_help().or(arg.get_long_help());
        if help.is_none_or(|text| text.to_string().trim().is_empty()) {
            found.push(format!("{path}: {}", arg.get_id()));
        }
    }
    for sub in command.get_subcommands() {
        undocumented(sub, &path, found);
    }
}

#[test]
fn every_argument_of_every_command_has_help() {
    let command = cli::command();
    let mut found = Vec::new();
    undocumented(&command, "", &mut found);
    assert!(
        found.is_empty(),
        "arguments without help:\n{}",
        found.join("\n")
    );
    // The walk reaches the nested commands (kv, certs) and their arguments.
    let kv_put = command
        .find_subcommand("kv")
        .and_then(|kv| kv.find_subcommand("put"))
        .expect("kv put");
    assert!(kv_put
        .get_arguments()
        .any(|arg| arg.get_id() == "expect_version"));
}
