//! The one thing a proxy needs from a go.mod: its `module` directive.

use super::GoModError;

/// Returns the module path declared by a go.mod file (the `module` directive,
/// quoted or bare, comments allowed, `module ( ... )` block form too). Errors if the
/// file is not UTF-8, has no module directive, or has more than one.
pub fn module_path(gomod: &[u8]) -> Result<String, GoModError> {
    let _ = gomod;
    unimplemented!()
}
