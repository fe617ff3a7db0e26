"""Starts moto's server (S3, Secrets Manager) on 127.0.0.1 and a free port for the test
suite, prints the port, and stops when its stdin closes (that is, when the test process
that started it exits, however it exits)."""
import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
