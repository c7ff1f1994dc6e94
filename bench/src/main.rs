//! `dutycard-bench`: see `bench::cli`.
//!
//! `dutycard-bench __server <dutycard arguments>` runs the dutycard server
//! itself (the same `dutycard_server::cli::run` as the `dutycard` binary):
//! the harness falls back to it when no `dutycard` binary sits next to this
//! one, and the smoke test uses it, so the server always runs as a separate
//! process whose memory can be read from `/proc`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dutycard-bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.get(1).is_some_and(|a| a == "__server") {
        let server_args = std::iter::once("dutycard".into()).chain(args.into_iter().skip(2));
        let cli = dutycard_server::cli::Cli::parse_from(server_args);
        return runtime.block_on(dutycard_server::cli::run(cli));
    }
    runtime.block_on(bench::cli::run(bench::cli::Cli::parse()))
}
