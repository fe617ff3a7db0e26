//! `check`: every fixture case through a component.

use std::path::Path;
use std::process::ExitCode;

use super::cases::{load_cases, run_case};
use super::{command_sandbox, fail};
use crate::adapters::refresh::load_named;

pub async fn run(component: &str, fixtures: &Path) -> ExitCode {
    let (runtime, limits) = match command_sandbox() {
        Ok(r) => r,
        Err(code) => return code,
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
