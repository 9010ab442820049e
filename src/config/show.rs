//! `goproxy config show`.

use super::Loaded;

pub fn render(loaded: &Loaded) -> String {
    format!("{:?}", loaded.settings)
}
