//! Shared by the interop tests: finding the real peer a test drives.

use std::path::{Path, PathBuf};

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The binary `name` from PATH. When it is missing the test is skipped (after saying why), unless
/// `IMS_REQUIRE_INTEROP=1`, where a missing peer fails the test. `install` says how to get it.
pub(crate) fn interop_tool(name: &str, install: &str) -> Option<PathBuf> {
    let required = std::env::var("IMS_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    match find_on_path(name) {
        Some(p) => Some(p),
        None if required => panic!("{name} not found on PATH and IMS_REQUIRE_INTEROP=1: {install}"),
        None => {
            eprintln!("SKIP: {name} not found on PATH ({install}, or set IMS_REQUIRE_INTEROP=1 to make this a failure)");
            None
        }
    }
}
