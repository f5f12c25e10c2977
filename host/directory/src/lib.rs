//! # plugboard-directory: who has this number?
//!
//! The host asks the tenant's LDAP directory (OpenLDAP, Active Directory, …)
//! for the person behind a phone number, e.g. to address a voicemail by mail
//! or to greet a caller by name. It is the host side of the `directory`
//! capability (ADR 0012); plugins never talk LDAP themselves.
//!
//! A lookup goes through three steps:
//!
//! 1. **Normalise** the number with the tenant's [`NumberingPlan`] to E.164:
//!    `+49 8142 4799 123`, `0049-81424799123`, `08142/4799-123`, `4799123`
//!    and the extension `123` all become `+4981424799123`. The extension
//!    (`123`) is derived back from it when the number is internal.
//! 2. **Cache**: an answer (found *or* not found) for that E.164 number
//!    younger than `cache_ttl_s` is returned without asking a server.
//! 3. **Search** the servers in the order listed: connect, bind (if
//!    configured), search every base (subtree) with the filter, where
//!    `{number}` becomes `+4981424799123` and `{extension}` becomes `123`
//!    (or the E.164 form again for outside numbers). A server that cannot be
//!    reached, refuses the bind, fails the search or takes longer than
//!    `timeout_s` is skipped and the next one tried; when none answers the
//!    error names every server with its reason. Failures are not cached.
//!
//! ## Configuration
//!
//! Both tables live in the tenant configuration; unknown keys are errors, and
//! `check()` reports the first problem with the key's name.
//!
//! ```toml
//! [numbering]
//! country_code = "49"                 # without "+" or "00"
//! area_code = "8142"                  # without the national prefix "0"
//! base_number = "4799"                # main number, without extension
//! extension_ranges = ["100-199", "2000-2999"]
//! international_prefix = "00"         # default "00" ("011" in North America)
//! national_prefix = "0"               # default "0" ("1" in North America, "" for none)
//! outside_line_prefix = "0"           # optional: dialled on phones before outside numbers
//!
//! [directory]                         # OpenLDAP, inetOrgPerson
//! servers = ["ldaps://ldap1.example.com", "ldaps://ldap2.example.com"]
//! bind_dn = "cn=pbx,ou=services,dc=example,dc=com"   # omit both for anonymous
//! bind_password = "secret"
//! bases = ["ou=people,dc=example,dc=com"]
//! # Defaults:
//! # filter = "(&(objectClass=person)(|(telephoneNumber={number})(telephoneNumber={extension})))"
//! # number = "telephoneNumber"
//! # mail = "mail"
//! # display_name = "displayName"     # "cn" when the entry has none
//! # pin_hash = (none)                 # attribute holding a voicemail PIN hash
//! # cache_ttl_s = 300                 # 0 turns the cache off
//! # cache_size = 10000                # most numbers cached
//! # timeout_s = 5                     # per server: connect + bind + search
//! # ca_file = "/etc/plugboard/tenant-ca.pem"   # CA for ldaps://, system roots otherwise
//! ```
//!
//! **Active Directory** needs no special code, only a different filter and
//! attributes. Bind with a service account (AD refuses anonymous searches);
//! `ipPhone` often holds the extension while `telephoneNumber` holds the
//! full number; the `userAccountControl` clause skips disabled accounts:
//!
//! ```toml
//! [directory]
//! servers = ["ldaps://dc1.corp.example.com", "ldaps://dc2.corp.example.com"]
//! bind_dn = "CN=svc-pbx,OU=Service Accounts,DC=corp,DC=example,DC=com"
//! bind_password = "secret"
//! bases = ["OU=Staff,DC=corp,DC=example,DC=com"]
//! filter = "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(|(ipPhone={extension})(telephoneNumber={number})))"
//! number = "telephoneNumber"
//! mail = "mail"                       # or "userPrincipalName"
//! display_name = "displayName"
//! ca_file = "/etc/plugboard/corp-root-ca.pem"
//! ```
//!
//! Use search bases below the domain root in AD (e.g. an OU): a search at
//! the root returns referrals to other partitions, which are ignored.
//!
//! ## How numbers are read
//!
//! Spaces, `-`, `.`, `/`, `(`, `)` are ignored, `+` is only allowed first,
//! and `(0)` inside a `+` number (`+49 (0)8142 …`) is dropped. Letters and
//! other characters are errors (`"0800-FLOWERS"` is rejected, not guessed).
//! The digits are then read by the first rule that applies:
//!
//! | Rule | Example (plan above, without outside line) | Result |
//! |------|---------|--------|
//! | `+` → international | `+49 8142 4799 123` | `+4981424799123` |
//! | an extension in `extension_ranges` | `123` | `+4981424799123` |
//! | international prefix | `0049-81424799123` | `+4981424799123` |
//! | outside-line prefix + outside number | `0 0043 1 5880` (with `outside_line_prefix = "0"`) | `+4315880` |
//! | national prefix | `08142 4799123` | `+4981424799123` |
//! | anything else: local | `4799123` | `+4981424799123` |
//!
//! Extensions are tested before the prefixes so that, in North America
//! (national prefix `1`), the extension `123` is not read as `+1 23`.
//! After an outside-line prefix, the rest is read as international or
//! national when it starts with those prefixes, otherwise as local, except
//! that when the outside-line prefix is also the national prefix (`0` in
//! Germany) a number that reads as national stays national: `04799123` is
//! `+49 4799123`, not outside line + local `4799123`. Write local numbers
//! without the outside-line prefix (or in national form) to avoid this. A
//! number that starts with the international prefix followed by a country
//! code is always international, so `0043 1 5880` is Austria even with an
//! outside-line prefix `0`; the price is that outside line `0` + the
//! national form `08142 …` (`008142 …`) reads as `+81 42…` (Japan). With
//! `outside_line_prefix = "0"`, the prefix therefore only helps for
//! outside line + international form (`0 0043 …`); plans whose outside-line
//! prefix differs from the other prefixes (`9` in North America: `9 1 415
//! 555 1234`, `9 555 1234`) have no such collisions.
//!
//! ## Directory data
//!
//! Store numbers in any human form: OpenLDAP's `telephoneNumber` uses
//! `telephoneNumberMatch`, which ignores spaces and hyphens, so an entry with
//! `+49 8142 4799-123` matches the filter value `+4981424799123`. Store
//! numbers in international form (`+49 …`); national forms such as
//! `08142 4799123` do not match. Extensions alone (`123`) match through
//! `{extension}`. Several entries with one number: the first by DN is used
//! and a warning is logged. Active Directory compares strings as stored, so
//! store either `+4981424799123` or match the extension through `ipPhone`.
//!
//! ## Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use plugboard_directory::{Directory, DirectoryConfig, NumberingPlan};
//! # let (config, plan): (DirectoryConfig, NumberingPlan) = todo!();
//! let directory = Directory::new(config, plan)?;
//! if let Some(person) = directory.lookup_number("0049 8142 4799-123").await? {
//!     println!("{:?} <{:?}> ext {:?}", person.display_name, person.mail, person.extension);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod config;
mod directory;
mod numbering;

pub use config::{DEFAULT_FILTER, DirectoryConfig, FILTER_PLACEHOLDERS};
pub use directory::{Directory, DirectoryError, Entry};
pub use numbering::{E164_MAX_DIGITS, NumberError, NumberingPlan};

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples in the crate documentation parse and pass `check()`.
    #[test]
    fn documented_examples_are_valid() {
        let doc = include_str!("lib.rs");
        let blocks: Vec<String> = doc
            .split("//! ```toml\n")
            .skip(1)
            .map(|rest| {
                rest.split("//! ```\n")
                    .next()
                    .unwrap()
                    .lines()
                    .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        assert_eq!(blocks.len(), 2);

        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Tenant {
            numbering: Option<NumberingPlan>,
            directory: DirectoryConfig,
        }
        let first: Tenant = toml::from_str(&blocks[0]).expect("first example");
        let plan = first.numbering.unwrap();
        plan.check().unwrap();
        first.directory.check().unwrap();
        assert_eq!(plan.outside_line_prefix.as_deref(), Some("0"));
        let ad: Tenant = toml::from_str(&blocks[1]).expect("AD example");
        ad.directory.check().unwrap();
        assert_eq!(ad.directory.filter.matches('{').count(), 2);

        // The rule table of the docs, with the documented plan.
        let no_outside = NumberingPlan {
            outside_line_prefix: None,
            ..plan.clone()
        };
        for raw in [
            "+49 8142 4799 123",
            "123",
            "0049-81424799123",
            "08142 4799123",
            "4799123",
        ] {
            assert_eq!(
                no_outside.normalize(raw).unwrap(),
                "+4981424799123",
                "{raw}"
            );
        }
        assert_eq!(plan.normalize("0 0043 1 5880").unwrap(), "+4315880");
        assert_eq!(plan.normalize("0 08142 4799123").unwrap(), "+81424799123");
        assert_eq!(plan.normalize("04799123").unwrap(), "+494799123");
        assert_eq!(plan.normalize("0043 1 5880").unwrap(), "+4315880");
        assert!(plan.normalize("0800-FLOWERS").is_err());
    }

    #[test]
    fn numbering_defaults_from_toml() {
        let plan: NumberingPlan =
            toml::from_str("country_code = \"49\"\narea_code = \"8142\"\nbase_number = \"4799\"\n")
                .unwrap();
        assert_eq!(plan.international_prefix, "00");
        assert_eq!(plan.national_prefix, "0");
        assert_eq!(plan.outside_line_prefix, None);
        assert!(plan.extension_ranges.is_empty());
        let err = toml::from_str::<NumberingPlan>(
            "country_code = \"49\"\narea_code = \"8142\"\nbase_number = \"4799\"\nextensions = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `extensions`"), "{err}");
    }
}
