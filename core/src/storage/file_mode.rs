//! Owner-only permissions for what FileStorage writes, where the platform has Unix modes
//! (folders 0700, keys 0600, as Go's CertMagic). Elsewhere (Windows) files take the access
//! rules their folder passes on, which is what a user's own data folder already restricts.

use std::fs::{DirBuilder, OpenOptions};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// A recursive `DirBuilder` for private folders.
pub(crate) fn private_dirs() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
}

/// `OpenOptions` creating a new file (never an existing one) with `mode` where modes exist.
pub(crate) fn create_new(mode: u32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode);
    #[cfg(not(unix))]
    let _ = mode;
    options
}
