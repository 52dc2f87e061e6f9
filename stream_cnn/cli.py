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
    # Each part keeps its commands beside the code they drive and lists them in `commands`.
    from stream_cnn.bench.commands import commands as bench_commands
    from stream_cnn.model.commands import commands as model_commands
    from stream_cnn.pipeline.commands import commands as pipeline_commands
    from stream_cnn.train.commands import commands as train_commands

    for command in (*pipeline_commands, *model_commands, *train_commands, *bench_commands):
        main.add_command(command)


_register()
