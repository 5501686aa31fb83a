//! ringraftctl: the command line over the local socket API. `run` is the whole program; the
//! binary only calls it.

pub mod cli;
pub mod output;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ringraft_client::{Client, Error as ClientError, KV_ANY_VERSION};
use ringraft_proto::{Request, Response, Status, FRAME_BYTES_MAX};

use cli::{Cli, Command, KvCommand};

/// Extra time given to a propose beyond its own timeout, so the daemon's answer (even a
/// `timeout`) arrives before ours gives up.
const PROPOSE_WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Parse the command line, run it, print the answers; the exit status is 0 on success, 1 on any
/// error (printed as `error: <status>: <message>`), 2 on a usage error.
pub fn main() -> ExitCode {
    let cli = cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                emit(&format!("{}\n", output::error_json(&error)));
            }
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<(), ClientError> {
    let request = match cli.command {
        Command::Certs(args) => {
            let report = crate::certs::run_certs_command(args)
                .map_err(|message| ClientError::new(Status::InvalidArgument, message))?;
            if cli.json {
                emit(&format!("{}\n", output::certs_json(&report)));
            } else {
                emit(&output::certs_text(&report));
            }
            return Ok(());
        }
        Command::Watch { from, records } => return watch(&cli, from, records),
        Command::Kv(ref command) => return kv(&cli, command),
        Command::Status => Request::Status,
        Command::Members { linearizable } => Request::Members { linearizable },
        Command::Ring { linearizable } => Request::Ring { linearizable },
        Command::Owner {
            ref key,
            linearizable,
        } => Request::Owner {
            key: key.as_bytes().to_vec(),
            linearizable,
        },
        Command::Replicas {
            ref key,
            n,
            linearizable,
        } => Request::Replicas {
            key: key.as_bytes().to_vec(),
            n,
            linearizable,
        },
        Command::Propose {
            ref data,
            ref file,
            timeout_ms,
        } => Request::Propose {
            data: proposal_data(data.as_deref(), file.as_deref())?,
            timeout_ms,
        },
        Command::Read { from, max } => Request::ReadLog { from, max },
        Command::Join {
            id,
            ref name,
            ref address,
            ref zone,
            weight,
        } => Request::Join {
            id,
            name: name.clone(),
            address: address.clone(),
            zone: zone.clone(),
            weight,
        },
        Command::Remove { id } => Request::Remove { id },
        Command::Promote { id } => Request::Promote { id },
        Command::TransferLeader { id } => Request::TransferLeader { id },
        Command::Snapshot => Request::Snapshot,
    };
    let mut wait = Duration::from_millis(cli.wait_ms);
    if let Request::Propose { timeout_ms, .. } = request {
        wait = wait.max(Duration::from_millis(timeout_ms.into()) + PROPOSE_WAIT_MARGIN);
    }
    let client = Client::connect(&cli.socket, Some(wait))?;
    let response = client.call(request)?;
    show(&response, cli.json);
    Ok(())
}

/// The bytes to propose: DATA's UTF-8 bytes, stdin for `-`, or the file's bytes. Reads at most
/// one byte more than a frame can carry, so a huge input is refused without being held.
fn proposal_data(data: Option<&str>, file: Option<&Path>) -> Result<Vec<u8>, ClientError> {
    let (reader, source): (Box<dyn Read>, String) = match (data, file) {
        (_, Some(path)) => {
            let opened = std::fs::File::open(path).map_err(|e| {
                ClientError::new(Status::InvalidArgument, format!("{}: {e}", path.display()))
            })?;
            (Box::new(opened), path.display().to_string())
        }
        (Some("-"), None) => (Box::new(std::io::stdin().lock()), "stdin".to_string()),
        (Some(text), None) => return Ok(text.as_bytes().to_vec()),
        (None, None) => {
            return Err(ClientError::new(
                Status::InvalidArgument,
                "propose needs DATA, - (stdin) or --file PATH",
            ))
        }
    };
    let mut bytes = Vec::new();
    let limit = FRAME_BYTES_MAX as u64 + 1;
    reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| ClientError::new(Status::InvalidArgument, format!("{source}: {e}")))?;
    if bytes.len() as u64 >= limit {
        return Err(ClientError::new(
            Status::TooLarge,
            format!("{source}: the proposal is larger than a frame ({FRAME_BYTES_MAX} bytes)"),
        ));
    }
    Ok(bytes)
}

fn show(response: &Response, json: bool) {
    if json {
        emit(&format!("{}\n", output::to_json(response)));
    } else {
        emit(&output::to_text(response));
    }
}

/// Write to stdout; a closed pipe (`ringraftctl watch 0 | head`) ends the program quietly.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// One register request. Successes print as their answer (`KvEntry`, `KvWritten`); an absent
/// register on get is a `not_found` error and a version mismatch a `conflict` error naming the
/// current version, so both exit non-zero like every other error.
fn kv(cli: &Cli, command: &KvCommand) -> Result<(), ClientError> {
    let timeout_ms = match *command {
        KvCommand::Get { timeout_ms, .. }
        | KvCommand::Put { timeout_ms, .. }
        | KvCommand::Delete { timeout_ms, .. } => timeout_ms,
    };
    let wait = Duration::from_millis(cli.wait_ms)
        .max(Duration::from_millis(timeout_ms.into()) + PROPOSE_WAIT_MARGIN);
    let client = Client::connect(&cli.socket, Some(wait))?;
    let response = match command {
        KvCommand::Get { key, .. } => {
            let entry = client.kv_get(key.as_bytes(), timeout_ms)?;
            if entry.value.is_none() {
                return Err(ClientError::new(
                    Status::NotFound,
                    format!("the register of {key:?} is absent (epoch {})", entry.epoch),
                ));
            }
            Response::KvEntry {
                value: entry.value,
                version: entry.version,
                epoch: entry.epoch,
            }
        }
        KvCommand::Put {
            key,
            value,
            expect_version,
            ..
        } => {
            let expected = expect_version.unwrap_or(KV_ANY_VERSION);
            let written = client.kv_cas(key.as_bytes(), expected, value.as_bytes(), timeout_ms)?;
            Response::KvWritten {
                version: written.version,
                epoch: written.epoch,
            }
        }
        KvCommand::Delete {
            key,
            expect_version,
            ..
        } => {
            let expected = expect_version.unwrap_or(KV_ANY_VERSION);
            let written = client.kv_delete(key.as_bytes(), expected, timeout_ms)?;
            Response::KvWritten {
                version: written.version,
                epoch: written.epoch,
            }
        }
    };
    show(&response, cli.json);
    Ok(())
}

fn watch(cli: &Cli, from: u64, records_max: Option<u64>) -> Result<(), ClientError> {
    let client = Client::connect(&cli.socket, Some(Duration::from_millis(cli.wait_ms)))?;
    client.set_timeout(None);
    let watch = client.watch_log(from)?;
    let mut shown = 0u64;
    loop {
        let mut batch = watch.next()?;
        if let Some(max) = records_max {
            batch
                .records
                .truncate(usize::try_from(max - shown).unwrap_or(usize::MAX));
            shown += batch.records.len() as u64;
        }
        if cli.json {
            // JSON Lines, as etcdctl watch: one document per record, whatever the batching.
            let lines: String = batch
                .records
                .iter()
                .map(|record| format!("{}\n", output::record_json(record)))
                .collect();
            emit(&lines);
        } else {
            emit(&output::to_text(&Response::LogRecords {
                records: batch.records,
                first_index: batch.first_index,
                last_index: batch.last_index,
            }));
        }
        if records_max.is_some_and(|max| shown >= max) {
            // Wait for the daemon to confirm, so it never writes to a closed socket.
            client.set_timeout(Some(Duration::from_millis(cli.wait_ms)));
            return watch.cancel();
        }
    }
}
