//! `ringraftd run`: one node as a long-running service, until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, Instrument};

use crate::api::{self, ApiConfig};
use crate::config::Config;
use crate::node::{NodeError, NodeExit};
use crate::{metrics, node, systemd};

/// Exit code: stopped on SIGTERM or SIGINT.
pub const EXIT_OK: i32 = 0;
/// Exit code: a fatal error stopped the node (storage, an unusable snapshot, startup failures);
/// the log names it. systemd restarts the daemon (`Restart=on-failure`).
pub const EXIT_FATAL: i32 = 1;
/// Exit code: the configuration is unusable.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code: this node was removed from the cluster (its log says at which epoch). Restarting
/// it cannot help, so packaging/ringraftd.service has `RestartPreventExitStatus=78`. (78 is
/// EX_CONFIG of sysexits.h: the node's configuration names a cluster it no longer belongs to.)
pub const EXIT_REMOVED: i32 = 78;

/// The exit codes, for `ringraftd --help`.
pub fn exit_codes_help() -> String {
    format!(
        "Exit codes of `ringraftd run`:\n  \
         {EXIT_OK}   stopped on SIGTERM or SIGINT\n  \
         {EXIT_FATAL}   a fatal error stopped the node (the log names it)\n  \
         {EXIT_CONFIG}   unusable configuration\n  \
         {EXIT_REMOVED}  this node was removed from the cluster; do not restart it \
         (the systemd unit sets RestartPreventExitStatus={EXIT_REMOVED})"
    )
}

#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// TOML configuration file (see packaging/ringraftd.toml).
    #[arg(long, short = 'c', env = "RINGRAFTD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `node_id`.
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Overrides `data_dir`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Overrides `socket_path`.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Overrides `listen` (QUIC, ip:port).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Write this process's pid here once serving; removed on a clean exit.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
}

impl RunArgs {
    fn load(&self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::load(path).map_err(|err| err.to_string())?,
            None => Config::default(),
        };
        if let Some(id) = self.node_id {
            config.node_id = id;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(socket) = &self.socket {
            config.socket_path = socket.clone();
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        config.validate().map_err(|err| err.to_string())?;
        Ok(config)
    }
}

/// Runs one node; returns the process exit code.
pub fn run(args: RunArgs) -> i32 {
    let config = match args.load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ringraftd: {err}");
            return EXIT_CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ringraftd-io")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ringraftd: cannot start the runtime: {err}");
            return EXIT_FATAL;
        }
    };
    let code = match runtime.block_on(serve(config, args.pid_file)) {
        Ok(NodeExit::Stopped) => EXIT_OK,
        // The node loop logged its one ERROR line with the epoch.
        Ok(NodeExit::Removed { .. }) => EXIT_REMOVED,
        // The node loop logged the error (`stop_on_fatal`).
        Err(Failure::Logged) => EXIT_FATAL,
        // The log goes to stderr: one ERROR line says it (an eprintln here said it twice).
        Err(Failure::Other(err)) => {
            error!("{err}");
            EXIT_FATAL
        }
    };
    info!(code, "ringraftd exits");
    code
}

/// Why `serve` failed.
enum Failure {
    /// A fatal error the node loop already logged.
    Logged,
    Other(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Other(message)
    }
}

async fn serve(config: Config, pid_file: Option<PathBuf>) -> Result<NodeExit, Failure> {
    let span = tracing::info_span!("ringraftd", id = config.node_id);
    let _entered = span.enter();
    let mut sigterm = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;

    // The socket before the node: a path in use or in a missing directory is refused before the
    // node touches its data dir (see `node::start`).
    let api = api::listen(&config.socket_path)
        .map_err(|err| format!("local socket {}: {err}", config.socket_path.display()))?;
    let mut node = match node::start(config.clone()).await {
        Ok(node) => node,
        Err(err) => {
            // Leave no socket file that looks served.
            if let Some(path) = &api.bound_path {
                let _ = std::fs::remove_file(path);
            }
            return Err(format!("cannot start the node: {err}").into());
        }
    };
    let listener = api.listener;

    let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
    let api_config = api_config(&config);
    let backend = Arc::new(node.handle.clone());
    let server = tokio::spawn(api::serve(listener, backend, api_config, api_stopped));
    if let Some(addr) = config.metrics_listen {
        tokio::spawn(metrics::serve(
            addr,
            node.handle.subscribe(),
            node.handle.registers().metrics().clone(),
        ));
    }
    tokio::spawn(
        systemd::report(node.handle.subscribe(), node.handle.loop_progress()).in_current_span(),
    );
    if let Some(path) = &pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|err| format!("pid file {}: {err}", path.display()))?;
    }
    info!(
        socket = %config.socket_path.display(),
        peer_addr = %node.peer_addr,
        "ringraftd is serving"
    );
    systemd::notify_ready();

    // The node loop drops its view sender when it stops on its own (a fatal error).
    let mut view = node.handle.subscribe();
    let node_stopped = async move { while view.changed().await.is_ok() {} };
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        _ = sigint.recv() => info!("SIGINT: shutting down"),
        _ = node_stopped => info!("the node loop stopped by itself"),
    }
    systemd::notify_stopping();
    let _ = stop_api.send(true);
    let result = tokio::task::spawn_blocking(move || {
        if node.is_finished() {
            node.wait()
        } else {
            node.shutdown()
        }
    })
    .await
    .map_err(|err| format!("shutdown task: {err}"))?;
    let _ = server.await;
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(exit) => Ok(exit),
        Err(NodeError::Fatal(_)) => Err(Failure::Logged),
        Err(err) => Err(Failure::Other(format!("node stopped: {err}"))),
    }
}

fn api_config(config: &Config) -> ApiConfig {
    let mut api = ApiConfig::default();
    api.admin_uids.extend(&config.admin_uids);
    api.connections_max = config.limits.connections_max;
    api.frame_bytes_max = config.limits.frame_bytes_max;
    api.proposal_bytes_max = config.limits.proposal_bytes_max;
    api.kv_value_bytes_max = config.limits.kv_value_bytes_max;
    api.in_flight_per_connection_max = config.limits.requests_in_flight_per_connection_max;
    api.watches_per_connection_max = config.limits.watches_per_connection_max;
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_file(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    #[test]
    fn the_unit_and_the_readme_know_the_removed_exit_code() {
        let unit = repository_file("packaging/ringraftd.service");
        let wanted = format!("RestartPreventExitStatus={EXIT_REMOVED}");
        assert!(
            unit.lines().any(|line| line.trim() == wanted),
            "packaging/ringraftd.service lacks {wanted}"
        );
        let readme = repository_file("README.md");
        assert!(
            readme.contains(&format!(
                "| {EXIT_REMOVED} | this node was removed from the cluster"
            )),
            "README.md documents exit code {EXIT_REMOVED}"
        );
        assert!(exit_codes_help().contains(&format!("{EXIT_REMOVED}  this node was removed")));
    }
}
