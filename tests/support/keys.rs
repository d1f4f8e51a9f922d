//! Keys and certificates the tests make: assertion keys with `guichet keygen`, a test CA and
//! a leaf certificate with `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BIN;

/// Writes a new assertion key (`guichet keygen`, ES256 or EdDSA) at `path`.
pub fn keygen(path: &Path, algorithm: &str) -> PathBuf {
    let output = Command::new(BIN)
        .args(["keygen", "--algorithm", algorithm, "--out"])
        .arg(path)
        .stdout(Stdio::null())
        .output()
        .expect("guichet keygen");
    assert!(output.status.success(), "guichet keygen: {output:?}");
    path.to_path_buf()
}

/// A test CA and a leaf certificate for 127.0.0.1 / localhost it signed.
#[derive(Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    /// Makes them with the `openssl` command line.
    pub fn generate(dir: &std::path::Path) -> Self {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl must be installed for the TLS tests");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        // A new P-256 key, unencrypted.
        let new_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &new_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=guichet test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &new_key,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("leaf.pem"),
            key: dir.join("leaf.key"),
        }
    }

    pub fn ca_certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap()
    }
}
