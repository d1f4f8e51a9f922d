//! Claim rules (`[[route.allow]]`): a session may use a route when one allow block holds, and a
//! block holds when each of its requirements does: a claim with one of the listed values (a
//! claim holding a list matches when any element is listed), the domain of `email` (exact or any
//! subdomain), or the session's provider.

use std::collections::HashSet;

use crate::identity::CompactIdentity;

/// One requirement of an allow block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The claim has one of these values.
    Claim {
        name: String,
        values: HashSet<String>,
    },
    /// `email`'s domain is one of these, or a subdomain of one.
    EmailDomain(Vec<String>),
    /// The session's provider is one of these ids.
    Provider(HashSet<String>),
}

/// Requirements that must all hold.
pub type AllowBlock = Vec<Requirement>;

/// Why a signed-in visitor may not use a route: the requirement it missed, for the page, the
/// log and the `reason` label of `guichet_access_denied_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The route does not accept this provider's sessions.
    Provider,
    /// An organisation claim (`siret`, `siren`, `organizational_unit`…) is not listed.
    Organisation,
    /// The email's domain is not listed.
    EmailDomain,
    /// Another claim is not listed.
    Claim,
}

impl Denial {
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Provider => "provider",
            Denial::Organisation => "organisation",
            Denial::EmailDomain => "email_domain",
            Denial::Claim => "claim",
        }
    }
}

impl Requirement {
    fn holds(&self, identity: &CompactIdentity) -> bool {
        match self {
            Requirement::Claim { name, values } => identity
                .claim(name)
                .is_some_and(|claim| claim.values().any(|v| values.contains(v))),
            Requirement::EmailDomain(domains) => identity
                .claim("email")
                .and_then(|email| email.values().next())
                .and_then(|email| email.rsplit_once('@'))
                .is_some_and(|(_, domain)| {
                    let domain = domain.to_ascii_lowercase();
                    domains.iter().any(|allowed| {
                        domain == *allowed || domain.ends_with(&format!(".{allowed}"))
                    })
                }),
            Requirement::Provider(ids) => ids.contains(identity.provider()),
        }
    }

    fn denial(&self) -> Denial {
        match self {
            Requirement::Claim { name, .. }
                if matches!(
                    name.as_str(),
                    "siret" | "siren" | "organizational_unit" | "belonging_population"
                ) =>
            {
                Denial::Organisation
            }
            Requirement::Claim { .. } => Denial::Claim,
            Requirement::EmailDomain(_) => Denial::EmailDomain,
            Requirement::Provider(_) => Denial::Provider,
        }
    }
}

/// Whether `identity` satisfies one of the blocks (no block: yes); else the first requirement
/// the first block misses.
pub fn admits(blocks: &[AllowBlock], identity: &CompactIdentity) -> Result<(), Denial> {
    let Some(first) = blocks.first() else {
        return Ok(());
    };
    if blocks
        .iter()
        .any(|block| block.iter().all(|requirement| requirement.holds(identity)))
    {
        return Ok(());
    }
    Err(first
        .iter()
        .find(|requirement| !requirement.holds(identity))
        .map_or(Denial::Claim, Requirement::denial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Claim, Identity};

    fn set(values: &[&str]) -> HashSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn one_block_must_hold_entirely() {
        let interior = vec![Requirement::Claim {
            name: "siret".into(),
            values: set(&["11002001300097"]),
        }];
        let mail = vec![
            Requirement::EmailDomain(vec!["interieur.gouv.fr".into()]),
            Requirement::Provider(set(&["agents"])),
        ];
        let blocks = vec![interior, mail];
        let agent = |siret: &str, email: &str, provider: &str| {
            CompactIdentity::new(
                &Identity::new(provider, "s")
                    .with_claim("siret", siret)
                    .with_claim("email", email),
            )
        };
        let cases = [
            (agent("11002001300097", "a@x.fr", "other"), Ok(())),
            (agent("1", "a@interieur.gouv.fr", "agents"), Ok(())),
            (agent("1", "a@dgpn.interieur.gouv.fr", "agents"), Ok(())),
            (agent("1", "a@INTERIEUR.GOUV.FR", "agents"), Ok(())),
            (
                agent("1", "a@interieur.gouv.fr", "other"),
                Err(Denial::Organisation),
            ),
            (
                agent("1", "a@fauxinterieur.gouv.fr", "agents"),
                Err(Denial::Organisation),
            ),
            (
                agent("1", "a@interieur.gouv.fr.evil.example", "agents"),
                Err(Denial::Organisation),
            ),
        ];
        for (identity, expected) in cases {
            assert_eq!(admits(&blocks, &identity), expected, "{identity:?}");
        }
        // A claim holding a list matches when any element is listed.
        let roles = vec![vec![Requirement::Claim {
            name: "roles".into(),
            values: set(&["admin"]),
        }]];
        let with = CompactIdentity::new(
            &Identity::new("p", "s")
                .with_claim("roles", Claim::List(vec!["user".into(), "admin".into()])),
        );
        assert_eq!(admits(&roles, &with), Ok(()));
        let escaped = CompactIdentity::new(
            &Identity::new("p", "s").with_claim("roles", Claim::List(vec!["user,admin".into()])),
        );
        assert_eq!(admits(&roles, &escaped), Err(Denial::Claim));
        assert_eq!(admits(&[], &escaped), Ok(()), "no block: anyone");
        let no_email = CompactIdentity::new(&Identity::new("agents", "s"));
        assert_eq!(
            admits(
                &[vec![Requirement::EmailDomain(vec!["x.fr".into()])]],
                &no_email
            ),
            Err(Denial::EmailDomain)
        );
    }
}
