//! Errors inside the library, and the last-error message each thread keeps per client.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CString};

use ringraft_proto::Status;

/// A failed call: the status the C caller gets, and the message `ringraft_last_error` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Status::InvalidArgument, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(Status::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Status::Internal, message)
    }
}

/// The shared client's errors carry the same two fields; only their text differs (this one reads
/// `<description>: <message>`, as `ringraft_last_error` always has).
impl From<ringraft_client::Error> for Error {
    fn from(error: ringraft_client::Error) -> Error {
        Error::new(error.status, error.message)
    }
}

impl From<Error> for ringraft_client::Error {
    fn from(error: Error) -> ringraft_client::Error {
        ringraft_client::Error::new(error.status, error.message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.description(), self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Key of the messages of calls made without a client (ringraft_connect failing).
pub(crate) const NO_CLIENT: u64 = 0;

thread_local! {
    // Per thread and per client, like errno per handle: a message stays valid until this thread's
    // next call on the same client, whatever other threads do with it meanwhile.
    static LAST_ERRORS: RefCell<HashMap<u64, CString>> = RefCell::new(HashMap::new());
}

pub fn set_last_error(client_key: u64, error: &Error) {
    let text = format!("{error}").replace('\0', " ");
    let message = CString::new(text).unwrap_or_default();
    // try_with: during thread teardown the table may be gone; the message is then dropped.
    let _ = LAST_ERRORS.try_with(|errors| {
        errors.borrow_mut().insert(client_key, message);
    });
}

pub fn clear_last_error(client_key: u64) {
    let _ = LAST_ERRORS.try_with(|errors| {
        errors.borrow_mut().remove(&client_key);
    });
}

/// The calling thread's last message for `client_key`, or "" when its last call succeeded. The
/// pointer lives in this thread's table until the thread's next call with the same key.
pub fn last_error_ptr(client_key: u64) -> *const c_char {
    LAST_ERRORS
        .try_with(|errors| match errors.borrow().get(&client_key) {
            Some(message) => message.as_ptr(),
            None => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}
