"""Search strategies as plug-ins: one module per strategy behind one base class
(:class:`~snaketune.strategies.base.Strategy`), and one registry (:mod:`.registry`) that maps a
config's ``search`` kind to its class. Everything outside this package asks the strategy object
instead of testing the kind."""
