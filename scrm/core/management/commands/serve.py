"""`manage.py serve`: web server, Celery worker and Celery beat together (for `make run`)."""

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scrm.core.demo import DEMO_LOGINS, DEMO_PASSWORD


class Command(BaseCommand):
    help = "Serve the back office with a Celery worker and beat; Ctrl-C stops all three."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, *args: Any, addr: str, concurrency: int, **options: Any) -> None:
        python = sys.executable
        manage = [python, "manage.py"]
        celery = [python, "-m", "celery", "-A", "scrm"]
        commands = {
            "web": [*manage, "runserver", addr],
            "worker": [
                *celery,
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [*celery, "beat", "--loglevel=INFO"],
        }
        processes = {
            name: subprocess.Popen(cmd, env=os.environ.copy()) for name, cmd in commands.items()
        }
        self._print_logins(addr)
        stopping = False

        def stop(*_args: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with code {process.returncode}; stopping the others."
                        )
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
            self.stdout.write("Web server, worker and beat stopped.")

    def _print_logins(self, addr: str) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"SCRM back office: http://{addr}/"))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role, landing in DEMO_LOGINS:
            self.stdout.write(f"  {username:<10} {role}  → {landing}")
        self.stdout.write("Ctrl-C stops the web server, the worker and beat.")
        self.stdout.write("")
