//! The console's static files, embedded in the binary: no CDN, no build
//! step. Served under a content hash so they may be cached; pages never are.

pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub const CSS: Asset = Asset {
    path: "/assets/console.css",
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../assets/console.css"),
};

pub const JS: Asset = Asset {
    path: "/assets/console.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/console.js"),
};

pub const ICON: Asset =
    Asset { path: "/assets/favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../assets/favicon.svg") };

pub const ALL: [Asset; 3] = [CSS, JS, ICON];

pub fn find(path: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.path == path)
}
