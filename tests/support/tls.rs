//! TLS for tests: a throwaway CA with server and client certificates (openssl CLI), and a
//! socat proxy that terminates TLS in front of a plaintext port on 127.0.0.1.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A test certificate authority with a server certificate for 127.0.0.1 and a client
/// certificate, made with the `openssl` command line.
pub struct TestPki {
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn create() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl (Debian package openssl) is needed for the TLS tests");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::fs::write(dir.path().join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
        std::fs::write(dir.path().join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
        run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=esmd-test-ca"]);
        for who in ["server", "client"] {
            run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &format!("{who}.key"), "-out", &format!("{who}.csr"), "-subj", &format!("/CN={who}")]);
            run(&["x509", "-req", "-in", &format!("{who}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &format!("{who}.pem"), "-days", "2", "-extfile", &format!("{who}.ext")]);
        }
        TestPki { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// socat terminating TLS (requiring a client certificate signed by the test CA) in front of a
/// plaintext port. Killed on drop.
pub struct TlsProxy {
    child: Child,
    pub port: u16,
}

impl TlsProxy {
    pub async fn start(pki: &TestPki, port: u16, upstream: u16) -> Self {
        let listen = format!(
            "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem")
        );
        let child = Command::new("socat")
            .args([&listen, &format!("tcp:127.0.0.1:{upstream}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (Debian package socat; scripts/kafka-deps.sh installs it) is needed for the TLS tests");
        super::wait::wait_for(&format!("socat to listen on {port}"), Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
        TlsProxy { child, port }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
