"""A WebSocket app for the integration tests, with Debian's
python3-websockets: /echo echoes every message, /push sends three and
closes. Run: /usr/bin/python3 server.py PORT"""

import asyncio
import sys

import websockets


async def handler(ws, path):
    if path == "/push":
        for i in range(3):
            await ws.send("push %d" % i)
        await ws.close(code=1000, reason="bye")
        return
    async for message in ws:
        await ws.send(message)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
