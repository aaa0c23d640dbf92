//! The staff console's pure core (DESIGN.md, "Staff and the console"): who
//! may see what ([`roles`]), how long a login lasts ([`lifetime`]), what a
//! request must carry to change anything ([`csrf`]), the headers every
//! response wears ([`headers`]), second factors and passwords ([`totp`],
//! [`password`]), login throttling ([`lockout`]) and the pages ([`pages`]).
//! Nothing here touches the store, the keys or the network: the server's
//! console shell reads the store and hands these modules plain values.
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod assets;
pub mod csrf;
pub mod headers;
pub mod integrity;
pub mod lifetime;
pub mod lockout;
pub mod oidc;
pub mod pages;
pub mod password;
pub mod roles;
pub mod totp;

pub use roles::{Role, Screen};
