"""Sub-commands of the ``livermets`` command line, one module each (see ``livermets.cli``)."""
