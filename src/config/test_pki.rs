//! Certificates for tests of upstream TLS: a CA, a client certificate it
//! signed, and files that are wrong in each way validation looks for.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A new CA: its certificate's PEM, and the issuer that signs with it.
pub fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` signed by `ca`: (certificate PEM, key PEM).
pub fn new_leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    (certificate.pem(), key.serialize_pem())
}

/// Into `folder`: `ca.pem`, `other-ca.pem`, `client.pem` and `client.key`
/// (signed by `ca.pem`), `other.key` (no certificate's), `junk.pem`,
/// `bad-der.pem` (a CERTIFICATE block that is no certificate).
pub fn write_files(folder: &Path) {
    let ca = new_ca("test CA");
    let (client, client_key) = new_leaf(&ca, &["client.test"]);
    let files = [
        ("ca.pem", ca.pem()),
        ("other-ca.pem", new_ca("other CA").pem()),
        ("client.pem", client),
        ("client.key", client_key),
        ("other.key", KeyPair::generate().unwrap().serialize_pem()),
        ("junk.pem", "not PEM at all\n".to_string()),
        (
            "bad-der.pem",
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n".to_string(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(folder.join(name), text).unwrap();
    }
}
