"""Tests of scripts/rollback.py against the AWS emulator. The tests start a private moto server
on a free loopback port: once moto has held a Lambda function, its state dump
(`/moto-api/data.json`, which other tests read) fails without a Docker engine, so Lambda
functions are never created on a shared emulator. Each test deploys functions of its own stage."""

import io
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid
import zipfile
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rollback  # noqa: E402


def code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


class RollbackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The same emulator launcher as the local stack (moto's app with keep-alive).
        server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra", "local", "aws_server.py")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cls.moto = subprocess.Popen([sys.executable, server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.saved_endpoint = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        os.environ.setdefault("AWS_REGION", "us-east-1")
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or cls.moto.poll() is not None:
                    cls.moto.kill()
                    raise RuntimeError("the private moto server did not start")
                time.sleep(0.1)
        iam = rollback.client("iam")
        cls.role = iam.create_role(
            RoleName=f"ooni-rollback-test-{uuid.uuid4().hex[:8]}",
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
        )["Role"]["Arn"]
        cls.lam = rollback.client("lambda")

    @classmethod
    def tearDownClass(cls):
        cls.moto.terminate()
        cls.moto.wait(timeout=10)
        if cls.saved_endpoint is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = cls.saved_endpoint

    def deploy(self, name: str, versions: int, canary: float | None = None) -> None:
        """A function with `versions` published versions and `live` on the last (or, with a
        canary weight, on the one before with the last taking that share)."""
        self.lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=self.role, Handler="bootstrap",
            Code={"ZipFile": code_zip()}, Publish=False,
        )
        for i in range(versions):
            self.lam.update_function_code(FunctionName=name, ZipFile=code_zip() + bytes([i]))
            self.lam.publish_version(FunctionName=name, Description=f"release {i + 1}")
        if canary is None:
            self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion=str(versions))
        else:
            self.lam.create_alias(
                FunctionName=name, Name="live", FunctionVersion=str(versions - 1),
                RoutingConfig={"AdditionalVersionWeights": {str(versions): canary}},
            )

    def live(self, name: str) -> tuple[str, dict]:
        a = self.lam.get_alias(FunctionName=name, Name="live")
        return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}

    def run_rollback(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = rollback.main(["--no-codedeploy", *argv])
        return code, out.getvalue()

    def test_every_function_of_the_stage_goes_back_one_version_and_other_stages_stay(self):
        stage, other = f"t{uuid.uuid4().hex[:8]}", f"o{uuid.uuid4().hex[:8]}"
        self.deploy(f"ooni-{stage}-CheckIn", 3)
        self.deploy(f"ooni-{stage}-Scorer", 2)
        self.deploy(f"ooni-{other}-CheckIn", 3)
        code, out = self.run_rollback("--stage", stage)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.live(f"ooni-{stage}-CheckIn"), ("2", {}))
        self.assertEqual(self.live(f"ooni-{stage}-Scorer"), ("1", {}))
        self.assertEqual(self.live(f"ooni-{other}-CheckIn"), ("3", {}))
        self.assertIn("2 of 2 functions done", out)

    def test_a_canary_in_progress_is_cut_off_and_the_primary_version_kept(self):
        stage = f"t{uuid.uuid4().hex[:8]}"
        self.deploy(f"ooni-{stage}-Health", 4, canary=0.1)
        self.assertEqual(self.live(f"ooni-{stage}-Health"), ("3", {"4": 0.1}))
        code, out = self.run_rollback("--stage", stage, "--function", "Health")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.live(f"ooni-{stage}-Health"), ("3", {}))

    def test_a_dry_run_changes_nothing_and_a_first_release_stays(self):
        stage = f"t{uuid.uuid4().hex[:8]}"
        self.deploy(f"ooni-{stage}-Version", 2)
        self.deploy(f"ooni-{stage}-Health", 1)
        code, out = self.run_rollback("--stage", stage, "--dry-run")
        self.assertEqual(code, 0, out)
        self.assertIn("2 -> 1", out)
        self.assertEqual(self.live(f"ooni-{stage}-Version"), ("2", {}))
        code, out = self.run_rollback("--stage", stage)
        self.assertEqual(self.live(f"ooni-{stage}-Version"), ("1", {}))
        self.assertEqual(self.live(f"ooni-{stage}-Health"), ("1", {}))
        self.assertIn("no older published version", out)

    def test_an_unknown_stage_is_an_error(self):
        code, _ = self.run_rollback("--stage", f"none{uuid.uuid4().hex[:8]}")
        self.assertEqual(code, 2)


if __name__ == "__main__":
    unittest.main()
