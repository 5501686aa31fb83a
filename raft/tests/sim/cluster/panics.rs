//! Panics inside a run become failures: caught, and kept off stderr (a mutant may trip a core
//! assertion in every seed); panics elsewhere in the test binary print as usual.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let location = info.location().map(|l| l.to_string());
                LOCATION.with(|l| *l.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic comes back as "panicked at <place>: <message>".
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    CATCHING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = LOCATION
            .with(|l| l.borrow_mut().take())
            .unwrap_or_else(|| "an unknown place".into());
        format!("panicked at {location}: {message}")
    })
}
#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_its_place_and_message() {
        assert_eq!(super::catch(|| 7), Ok(7));
        let caught = super::catch(|| -> u32 { panic!("broken invariant {}", 3) });
        let reason = caught.unwrap_err();
        assert!(reason.contains("panics.rs"), "{reason}");
        assert!(reason.ends_with(": broken invariant 3"), "{reason}");
    }
}
