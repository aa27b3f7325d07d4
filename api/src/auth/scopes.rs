//! The scopes a token may carry, as a small set. `admin` holds every scope
//! and sees every tenant.

use std::fmt;

use super::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    EventsWrite,
    UsageRead,
    BillingRead,
    BillingAdmin,
    SqlRead,
    /// An agent pool taking its steps (`/v1/dispatch/{pool}`).
    DispatchConsume,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::EventsWrite,
        Scope::UsageRead,
        Scope::BillingRead,
        Scope::BillingAdmin,
        Scope::SqlRead,
        Scope::DispatchConsume,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::UsageRead => "usage:read",
            Scope::BillingRead => "billing:read",
            Scope::BillingAdmin => "billing:admin",
            Scope::SqlRead => "sql:read",
            Scope::DispatchConsume => "dispatch:consume",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Result<Scope, AuthError> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| AuthError::UnknownScope(name.to_string()))
    }

    pub(crate) fn names() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Scopes named in a list of names, or in one space-separated string
    /// (OAuth's `scope` form); an unknown name is an error, not ignored, so
    /// a typo in a minted token shows at once.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, AuthError> {
        let mut set = Scopes::default();
        for name in names.into_iter().flat_map(str::split_whitespace) {
            set.0 |= Scope::parse(name)?.bit();
        }
        Ok(set)
    }

    /// Whether the set grants `scope`: held, or `admin` held.
    pub fn grants(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .map(Scope::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_admin_grants_all() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
        }
        let set = Scopes::parse(["usage:read billing:read"]).unwrap();
        assert!(set.grants(Scope::UsageRead) && set.grants(Scope::BillingRead));
        assert!(!set.grants(Scope::SqlRead));
        assert_eq!(set.names(), vec!["usage:read", "billing:read"]);
        let admin = Scopes::parse(["admin"]).unwrap();
        assert!(Scope::ALL.into_iter().all(|s| admin.grants(s)));
        assert_eq!(
            Scopes::parse(["usage:read", "usage:write"]),
            Err(AuthError::UnknownScope("usage:write".into()))
        );
        assert_eq!(Scopes::parse([""]), Ok(Scopes::default()));
    }
}
