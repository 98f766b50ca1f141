__version__ = "0.0.1"

# Noise a user cannot act on, silenced once for every process that imports us (each rank too):
# bitsandbytes warns at import that an optional CPU kernel package (`kernels`, fetched from a hub) is missing;
# we keep bitsandbytes' standard packed layout on the CPU and do not use that kernel. transformers 5 warns that
# `is_gradient_checkpointing` is deprecated each time peft reads it.
import logging as _logging, warnings as _warnings
_logging.getLogger('bitsandbytes.backends.cpu.ops').addFilter(lambda r: 'kernels-community' not in r.getMessage())
_warnings.filterwarnings('ignore', message='.*is_gradient_checkpointing.*', category=FutureWarning)
