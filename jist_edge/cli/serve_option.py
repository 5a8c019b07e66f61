"""`--serve [HOST:]PORT` for `run` and `demo`: the option, starting the live view, and the demo's ending."""
import time
from typing import Any, Callable, Dict, Optional, Tuple

import click

ServeAddress = Optional[Tuple[str, int]]

RUN_HELP = (
    "Serve a live view at http://HOST:PORT/ for a browser: the camera frame (MJPEG, at most 10 fps and 640 px "
    "wide), the route map with the current estimate and its recent trail, FPS, per-stage latency, drops and "
    "skips; /status.json has the latest result for scripts. HOST defaults to 127.0.0.1, which only this machine "
    "can open (from elsewhere: ssh -L PORT:127.0.0.1:PORT DEVICE, then http://127.0.0.1:PORT/). Binding "
    "0.0.0.0:PORT (every interface) or the device's address is a deliberate choice: anyone who can reach that "
    "port sees the camera. Read-only, GET only, at most 4 viewers; frames for the view are dropped, never the "
    "pipeline's.")
DEMO_HELP = (
    "Serve the query run live at http://HOST:PORT/ (HOST defaults to 127.0.0.1; see `jist-edge run --help`): "
    "open it while the model and map are made; when the query run ends its last state stays served until "
    "Ctrl-C.")


def _parse(ctx: Any, param: Any, value: Optional[str]) -> ServeAddress:
    from jist_edge.output.web.server import parse_serve_address

    if value is None:
        return None
    try:
        return parse_serve_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param)


def serve_option(help_text: str) -> Callable:
    return click.option("--serve", "serve", default=None, metavar="[HOST:]PORT", callback=_parse, help=help_text)


def open_view(address: ServeAddress, log: Callable[[str], None], place_map: Any = None,
              info: Optional[Dict[str, Any]] = None, note: str = "") -> Any:
    """A started WebView for ``--serve``, or None without it. Listening fails with one line naming the address."""
    if address is None:
        return None
    from jist_edge.output.web.server import WebView

    view = WebView(address[0], address[1]).start()
    if place_map is not None:
        view.set_map(place_map, info)
    log("live view: {}{}".format(view.url, note))
    return view


def serve_until_interrupted(view: Any, message: str, echo: Callable[[str], None]) -> None:
    """Keep the last state on show after the run ended, until Ctrl-C."""
    view.finish(message)
    echo("\n{}: still serving its last state at {}; press Ctrl-C to stop.".format(message, view.url))
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("stopped serving")
    finally:
        view.close()
