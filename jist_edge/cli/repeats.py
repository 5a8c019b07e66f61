"""An option that takes one value refuses a second: click keeps the last, so `map build --images A
--images B` silently dropped A. Installed on every subcommand by the command group."""
from typing import Any, Dict, List

import click

ROUTE_HINT = {"--images": "several routes use --route", "--video": "several routes use --route"}


def _takes_value(param: click.Option) -> bool:
    return not param.is_flag and not param.count


def refuse_repeated_options(command: click.Command, args: List[str]) -> None:
    """click.UsageError naming the first single-value option given twice in ``args``."""
    nargs = {}  # type: Dict[str, int]
    single = set()
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        for opt in list(param.opts) + list(param.secondary_opts):
            nargs[opt] = param.nargs if _takes_value(param) else 0
            if _takes_value(param) and not param.multiple:
                single.add(opt)
    seen = {}  # type: Dict[str, int]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in nargs:
            if name in single:
                seen[name] = seen.get(name, 0) + 1
                if seen[name] == 2:
                    hint = ROUTE_HINT.get(name, "give it once")
                    raise click.UsageError("{} given twice: it takes one value ({})".format(name, hint))
            if "=" not in arg:
                i += nargs[name]
        i += 1


def guard(command: Any) -> Any:
    """``command`` (and every subcommand of a group) with the check run before click parses."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            guard(sub)
        return command
    if getattr(command, "_repeats_guarded", False):
        return command
    original = command.parse_args

    def parse_args(ctx: click.Context, args: List[str]) -> List[str]:
        refuse_repeated_options(command, list(args))
        return original(ctx, args)

    command.parse_args = parse_args
    command._repeats_guarded = True
    return command
