//! `check`: every fixture case through a component.

use std::path::Path;
use std::process::ExitCode;

use super::cases::{load_cases, run_case};
use super::fail;
use crate::adapters::refresh::load_named;
use crate::config::GuestLimits;
use crate::lambda::sandbox;

pub async fn run(component: &str, fixtures: &Path) -> ExitCode {
    let (runtime, limits) =
        match GuestLimits::from_env().map_err(|e| e.to_string()).and_then(|l| sandbox(&l).map_err(|e| e.to_string())) {
            Ok(r) => r,
            Err(e) => return fail(2, e),
        };
    let guest = match load_named(&runtime, component, limits).await {
        Ok(g) => g,
        Err(e) => return fail(1, e),
    };
    let cases = match load_cases(fixtures) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    println!("checking {} ({}) against {} cases in {}", guest.label(), guest.origin(), cases.len(), fixtures.display());
    let mut failed = 0;
    for case in &cases {
        match run_case(&guest, case).await {
            Ok(()) => println!("ok    {}", case.name),
            Err(diffs) => {
                failed += 1;
                println!("FAIL  {}", case.name);
                for d in diffs {
                    println!("      {d}");
                }
            }
        }
    }
    println!("{} cases: {} passed, {failed} failed", cases.len(), cases.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
