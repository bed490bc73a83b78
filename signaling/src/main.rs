//! `cloudlaw`: the Cloud Law Office server. All logic is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    signaling::cli::run()
}
