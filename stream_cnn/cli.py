"""The `stream-cnn` command: a thin shell over the package. Each sub-command lives beside the code it drives
and is registered here; a StreamCnnError becomes one line on stderr and its exit code."""
import sys

import click

from stream_cnn import __version__
from stream_cnn.errors import StreamCnnError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except StreamCnnError as err:
            click.echo(f"stream-cnn: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stream-cnn")
def main():
    """Run a CNN made of Numba kernels on camera and video frames, with its softmax drawn on the frame."""


def _register():
    # Imported lazily per command module so `stream-cnn --help` stays fast; each module exposes `commands`.
    import importlib

    for module_name in (
        "stream_cnn.model.commands",   # inspect, export
        "stream_cnn.pipeline.commands",  # webcam, video, demo
        "stream_cnn.train.commands",   # train, eval
        "stream_cnn.bench.commands",   # bench
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if not module_name.startswith(str(err.name)):
                raise
            continue  # part not built yet
        for command in module.commands:
            main.add_command(command)


_register()
