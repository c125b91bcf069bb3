"""Only the compiled part of flaglens; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # OTLP/protobuf logs → canonical records (see the file's header). Optional: without a C
        # compiler the install goes on, and ingest.decode gives every request to the Python path.
        Extension(
            "ingest.decode._logs_pb",
            ["ingest/decode/_logs_pb.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
