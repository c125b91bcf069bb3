"""Bearer tokens bound to services, and TLS on both ports, against in-process servers (and the
stock exporter with its token header against a real one)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import duckdb
import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from flaglens.cli.main import main
from ingest.auth import token_hash
from tests.factories import decision_attributes, otlp_json_logs, proto_logs
from tests.inprocess import start_inprocess
from tests.servers import start_server

TOKEN = "checkout-secret-token"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _resource(service: str) -> dict:
    return {"service.name": service, "deployment.environment.name": "prod"}


def _logs(service: str, count: int = 1) -> dict:
    return otlp_json_logs([decision_attributes() for _ in range(count)], _resource(service))


def _protobuf(service: str) -> bytes:
    return proto_logs([decision_attributes()], _resource(service)).SerializeToString()


def _token_file(folder) -> Path:
    tokens = folder / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "checkout-team"\nsha256 = "{token_hash(TOKEN)}"\n'
        'services = ["checkout"]\n'
    )
    return tokens


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    server = start_inprocess(folder / "f.duckdb", grpc=True, auth_file=_token_file(folder))
    yield server, folder / "f.duckdb"
    server.stop()


@pytest.mark.parametrize(
    ("header", "fragment"),
    [(None, "no bearer token"), ("Bearer wrong", "unknown bearer token"),
     ("Basic abc", "not 'Bearer <token>'")],
)  # fmt: skip
def test_http_without_a_valid_token_is_401(authed, header, fragment):
    server, _ = authed
    headers = {"content-type": "application/json"} | ({"authorization": header} if header else {})
    response = httpx.post(f"{server.http_url}/v1/logs", json=_logs("checkout"), headers=headers)
    assert response.status_code == 401
    assert fragment in response.json()["message"]


def test_grpc_without_a_token_is_unauthenticated_and_with_one_is_served(authed):
    server, _ = authed
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(LOGS_EXPORT)
        with pytest.raises(grpc.RpcError) as caught:
            export(_protobuf("checkout"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
            export(_protobuf("checkout"), timeout=10,
                   metadata=(("authorization", f"Bearer {TOKEN}"),))
        )  # fmt: skip
    assert answer.partial_success.rejected_log_records == 0


def test_a_record_of_another_service_is_quarantined(authed):
    server, _ = authed
    document = _logs("checkout", 2)
    document["resourceLogs"].append(_logs("payments", 1)["resourceLogs"][0])
    response = httpx.post(
        f"{server.http_url}/v1/logs", json=document,
        headers={"authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1
    assert "'payments' may not be written with token 'checkout-team'" in partial["errorMessage"]


def test_tokens_bind_what_is_stored(authed):
    """What a token's service sent is stored; the other service's record only in quarantine."""
    server, db = authed
    sent = decision_attributes()
    document = otlp_json_logs([sent], {"service.name": "checkout",
                                       "deployment.environment.name": "prod"})  # fmt: skip
    response = httpx.post(f"{server.http_url}/v1/logs", json=document,
                          headers={"authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 200
    server.stop()
    con = duckdb.connect(str(db), read_only=True)
    ids = {r[0] for r in con.sql("select decision_id from decisions").fetchall()}
    assert sent["decision.id"] in ids
    reasons = con.sql("select errors from quarantine").fetchall()
    assert len(reasons) == 1 and "may not be written with token" in reasons[0][0]


@pytest.mark.e2e
def test_stock_exporter_with_its_token_header(tmp_path):
    """The stock OTLP/HTTP exporter's headers reach a real `flaglens serve` with a token file."""
    db = tmp_path / "f.duckdb"
    server = start_server(db, "--auth-file", str(_token_file(tmp_path)))
    try:
        provider = LoggerProvider(
            resource=Resource.create(
                {"service.name": "checkout", "deployment.environment.name": "p"}
            )
        )
        exporter = OTLPLogExporter(
            endpoint=f"{server.http_url}/v1/logs", headers={"authorization": f"Bearer {TOKEN}"}
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        sent = decision_attributes()
        provider.get_logger("tests").emit(event_name="feature_flag.evaluation", attributes=sent)
        provider.shutdown()
    finally:
        server.stop()
    con = duckdb.connect(str(db), read_only=True)
    ids = {r[0] for r in con.sql("select decision_id from decisions").fetchall()}
    assert sent["decision.id"] in ids
    assert con.sql("select count(*) from quarantine").fetchone() == (0,)


def test_beyond_loopback_without_tokens_the_server_refuses_to_start(tmp_path, capsys):
    code = main(["serve", "--db", str(tmp_path / "f.duckdb"), "--host", "0.0.0.0",
                 "--no-dashboards", "--no-grpc"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--auth-file" in err and "--insecure-no-auth" in err
    assert not (tmp_path / "f.duckdb").exists()


def _self_signed(folder) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flaglens-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    return cert_path, key_path


def test_tls_on_both_ports(tmp_path):
    cert, key = _self_signed(tmp_path)
    server = start_inprocess(tmp_path / "f.duckdb", grpc=True, tls_cert=cert, tls_key=key)
    try:
        assert server.http_url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        response = httpx.post(f"{server.http_url}/v1/logs", json=_logs("checkout"), verify=trusted)
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{server.http_url}/v1/logs", json=_logs("checkout"))  # unknown CA
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(server.grpc_target, credentials) as channel:
            answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
                channel.unary_unary(LOGS_EXPORT)(_protobuf("checkout"), timeout=10)
            )
        assert answer.partial_success.rejected_log_records == 0
    finally:
        server.stop()
