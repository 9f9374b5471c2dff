//! Users and their API tokens.
//!
//! A token is 256 random bits, shown once when the user is added. Only its blake3
//! hash is stored, in a table keyed by that hash, so authenticating is one point
//! lookup: no stored token to leak, and no byte-by-byte comparison of secrets whose
//! timing could leak one (an attacker can learn at most about a hash's prefix, which
//! says nothing about a token). A slow password hash isn't needed: the tokens are
//! random, not chosen by people, so they can't be guessed from a dictionary.

use std::fmt;
use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{TOKENS, USERS, corrupt};
use super::{Store, StoreError, from_nanos, now_nanos};

/// What a user token starts with, so a leaked one is recognizable in logs and scanners.
const USER_TOKEN_PREFIX: &str = "hu_";

/// The longest user name.
const MAX_NAME: usize = 64;

/// The blake3 hash of an API token: what the store and the server config keep.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(*blake3::hash(token.as_bytes()).as_bytes())
    }

    /// Parses 64 hex digits (what [`fmt::Display`] writes), e.g. from a config file.
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let hash = blake3::Hash::from_hex(text.trim()).ok()?;
        Some(TokenHash(*hash.as_bytes()))
    }

    /// Whether `token` hashes to this, comparing the hashes in constant time.
    pub fn matches(&self, token: &str) -> bool {
        // blake3::Hash's equality is constant-time.
        blake3::Hash::from_bytes(self.0) == blake3::hash(token.as_bytes())
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from_bytes(self.0).to_hex().as_str())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({self})")
    }
}

/// A new random API token: `prefix` then 64 hex digits (256 bits from the OS).
pub fn new_token(prefix: &str) -> Result<String, UserError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| UserError::Random(err.to_string()))?;
    let mut token = String::with_capacity(prefix.len() + 64);
    token.push_str(prefix);
    for byte in bytes {
        token.push_str(&format!("{byte:02x}"));
    }
    Ok(token)
}

/// A user as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user's name: the owner of their sessions.
    pub name: String,
    /// When the user was added.
    pub created: SystemTime,
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is empty, too long or has characters other than ASCII letters, digits, `_`, `-` and `.`.
    #[error(
        "invalid user name `{name}`: use 1 to {MAX_NAME} ASCII letters, digits, `_`, `-` or `.`, not starting with `.`"
    )]
    InvalidName {
        /// The name given (cut to 80 characters).
        name: String,
    },
    /// A user with this name exists already.
    #[error("user `{0}` already exists; remove it first or choose another name")]
    Exists(String),
    /// No user has this name.
    #[error("user `{0}` not found")]
    NotFound(String),
    /// The operating system's random source failed, so no token could be made.
    #[error("cannot generate a token: the system random source failed: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The JSON value of the users table.
#[derive(Serialize, Deserialize)]
pub(super) struct UserRecord {
    created_nanos: u64,
    /// Hex of the token hash, so removing a user can remove its token entry.
    token_hash: String,
}

fn check_name(name: &str) -> Result<(), UserError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid { Ok(()) } else { Err(UserError::InvalidName { name: name.chars().take(80).collect() }) }
}

fn decode(name: &str, bytes: &[u8]) -> Result<UserRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| corrupt(format!("user `{name}`"), err))
}

impl Store {
    /// Adds a user and returns their API token. The token is not stored (only its
    /// hash), so this is the one time it can be shown.
    pub fn add_user(&self, name: &str) -> Result<String, UserError> {
        check_name(name)?;
        let token = new_token(USER_TOKEN_PREFIX)?;
        let hash = TokenHash::of(&token);
        let record = UserRecord { created_nanos: now_nanos(), token_hash: hash.to_string() };
        let value = serde_json::to_vec(&record).map_err(StoreError::Encode)?;
        let mut exists = false;
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            if users.get(name)?.is_some() {
                exists = true;
                return Ok(());
            }
            users.insert(name, value.as_slice())?;
            txn.open_table(TOKENS)?.insert(&hash.0, name)?;
            Ok(())
        })?;
        if exists { Err(UserError::Exists(name.to_owned())) } else { Ok(token) }
    }

    /// The user a token belongs to, if any.
    pub fn user_by_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let hash = TokenHash::of(token);
        let txn = self.read()?;
        let tokens = txn.open_table(TOKENS)?;
        Ok(tokens.get(&hash.0)?.map(|guard| guard.value().to_owned()))
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        users
            .iter()?
            .map(|entry| {
                let (name, value) = entry?;
                let record = decode(name.value(), value.value())?;
                Ok(User { name: name.value().to_owned(), created: from_nanos(record.created_nanos) })
            })
            .collect()
    }

    /// Removes a user and their token, so the token stops working at once. Their
    /// sessions stay in the store, still owned by the name: delete them first if they
    /// must go, and don't reuse the name for someone else unless they may see them.
    pub fn remove_user(&self, name: &str) -> Result<(), UserError> {
        let mut found = true;
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let Some(value) = users.remove(name)? else {
                found = false;
                return Ok(());
            };
            let record = decode(name, value.value())?;
            drop(value);
            let hash = TokenHash::from_hex(&record.token_hash)
                .ok_or_else(|| corrupt(format!("user `{name}`"), "its token hash is not 64 hex digits"))?;
            txn.open_table(TOKENS)?.remove(&hash.0)?;
            Ok(())
        })?;
        if found { Ok(()) } else { Err(UserError::NotFound(name.to_owned())) }
    }
}
