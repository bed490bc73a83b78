//! Small validated types shared across the areas: parse once, then trust.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a resident needs help with. The codes are stable: they appear in the
/// database, the protocol and the web apps' `data-testid`s (`topic-<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Land and grassland.
    Land,
    /// Family and marriage.
    Family,
    /// Labour and wages.
    Labour,
    /// Debts and contracts.
    Debt,
    Administrative,
    Criminal,
    Other,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Land,
        Topic::Family,
        Topic::Labour,
        Topic::Debt,
        Topic::Administrative,
        Topic::Criminal,
        Topic::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Topic::Land => "land",
            Topic::Family => "family",
            Topic::Labour => "labour",
            Topic::Debt => "debt",
            Topic::Administrative => "administrative",
            Topic::Criminal => "criminal",
            Topic::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A language as a lower-case ISO 639-1 code (`bo` Tibetan, `zh` Chinese, `en`
/// English...). Which languages a deployment offers is configuration; this type
/// only guarantees the shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "bo", pattern = "^[a-z]{2,3}$")]
pub struct Language(String);

impl Language {
    pub fn parse(code: &str) -> Result<Language, String> {
        let ok = (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase());
        if ok {
            Ok(Language(code.to_owned()))
        } else {
            Err(format!("{code:?} is not a language code like \"bo\""))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Language::parse(&value)
    }
}

impl From<Language> for String {
    fn from(value: Language) -> String {
        value.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person may do. One account may hold several roles (a lawyer who also
/// interprets). Terminals are devices, not accounts, and have no role here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Lawyer,
    Interpreter,
    Coordinator,
    Admin,
    /// Handles referrals for the receiving offices they belong to.
    Caseworker,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Lawyer, Role::Interpreter, Role::Coordinator, Role::Admin, Role::Caseworker];

    pub fn code(self) -> &'static str {
        match self {
            Role::Lawyer => "lawyer",
            Role::Interpreter => "interpreter",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
            Role::Caseworker => "caseworker",
        }
    }

    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// What went wrong, as a client is told it (the `code` of a WebSocket
/// `error`): shared by the live path, which decides, and the WebSocket layer,
/// which says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not an object with a known `type` and its fields.
    Malformed,
    /// Binary frames are not part of the protocol.
    BinaryUnsupported,
    /// Larger than the cap; the connection closes (the frame was refused).
    TooLarge,
    /// Too many messages; slow down.
    RateLimited,
    /// Nothing received for too long; the connection closes.
    IdleTimeout,
    /// The session, account or terminal was revoked; the connection closes.
    Revoked,
    /// A room token that is invalid, expired, or not the sender's.
    Unauthorized,
    /// The relay refused (room full, no offer to answer, a bad session
    /// description...); the message says which. Nothing changed.
    Refused,
    /// The sender's role may not send this message.
    Forbidden,
    /// No such request or consultation, or not the sender's.
    NotFound,
    /// A value out of range (a language not offered, a rating not 1 to 5).
    Invalid,
    /// It clashes with what the sender already has (a request waiting, a
    /// consultation open).
    Conflict,
}

/// A refusal: its code and a message a client developer can act on.
pub type Failure = (ErrorCode, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_codes_round_trip() {
        for topic in Topic::ALL {
            assert_eq!(Topic::from_code(topic.code()), Some(topic));
            let json = serde_json::to_string(&topic).unwrap();
            assert_eq!(json, format!("\"{}\"", topic.code()));
        }
        assert_eq!(Topic::from_code("LAND"), None);
    }

    #[test]
    fn language_codes_are_checked() {
        assert!(Language::parse("bo").is_ok());
        assert!(Language::parse("zh").is_ok());
        for bad in ["", "b", "BO", "bo-CN", "tibetan", "b0"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Language>("\"EN\"").is_err());
    }
}

/// A value that breaks one of the rules below: what is wrong, for the person
/// who typed it (the API answers it as `invalid_field`, the CLI prints it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

// The rules for an account's fields, for the API and for `cloudlaw admin create`.

pub fn check_username(username: &str) -> Result<(), Invalid> {
    let ok = (1..=64).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(Invalid("username: 1 to 64 of a-z, 0-9, '.', '_', '-'".into())) }
}

pub fn check_display_name(name: &str) -> Result<String, Invalid> {
    let name = name.trim();
    if (1..=200).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(Invalid("display_name: 1 to 200 characters".into()))
    }
}

pub fn check_password(password: &str) -> Result<(), Invalid> {
    if (8..=1024).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(Invalid("password: at least 8 characters".into()))
    }
}

/// A time zone the IANA database knows (`Asia/Shanghai`, `UTC`).
pub fn check_time_zone(zone: &str) -> Result<(), Invalid> {
    let ok = zone.len() <= 64 && jiff::tz::TimeZone::get(zone).is_ok();
    if ok { Ok(()) } else { Err(Invalid(format!("time_zone: {zone:?} is not an IANA time zone"))) }
}
