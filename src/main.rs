//! The `dragoman` binary: parse flags, run the subcommand, turn errors into one line on
//! stderr and an exit code (1 runtime, 2 usage). A closed stdout ends quietly with 0.

mod cli;
mod commands;
mod outputs;
mod progress;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match &cli.command {
        cli::Command::Translate(args) => commands::translate(args),
        cli::Command::Summarize(args) => commands::summarize(args),
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Models { command, runtime } => commands::models(command, runtime),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<outputs::Interrupted>().is_some() => {
            eprintln!("dragoman: {err:#}");
            ExitCode::from(130)
        }
        Err(err) => {
            eprintln!("dragoman: {err:#}");
            let usage = matches!(
                err.downcast_ref::<dragoman::Error>(),
                Some(dragoman::Error::Setting(_))
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
        // serde_json's writer errors carry the io error's kind but not the error itself.
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(|e| e.io_error_kind());
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
