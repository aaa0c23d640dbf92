//! The route's templates (a Vapi first message, a Twilio TwiML answer) with
//! minijinja: `{{ session_id }}` and the other call variables. TwiML is
//! rendered with XML escaping, so nothing a caller controls can add markup.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment};

/// Whether `source` is a template that will render.
pub fn check(source: &str) -> Result<(), String> {
    let env = Environment::new();
    env.template_from_str(source).map(|_| ()).map_err(|e| format!("template does not parse: {}", e.kind()))
}

/// Renders `source` with `vars`; `xml` escapes values for TwiML.
pub fn render(source: &str, vars: &BTreeMap<String, String>, xml: bool) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| if xml { AutoEscape::Html } else { AutoEscape::None });
    env.render_str(source, vars).map_err(|e| format!("template does not render: {}", e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_for_xml_only() {
        let vars = BTreeMap::from([("name".to_owned(), "<Hangup/> & co".to_owned())]);
        assert_eq!(render("<Say>{{ name }}</Say>", &vars, true).unwrap(), "<Say>&lt;Hangup&#x2f;&gt; &amp; co</Say>");
        assert_eq!(render("Hi {{ name }}", &vars, false).unwrap(), "Hi <Hangup/> & co");
        assert!(check("{{ broken").is_err());
    }
}
