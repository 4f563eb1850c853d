"""Operating rasbot from chat: platform-neutral commands and their adapters.

Commands live in one module per family (`releases`, `whitelist`, `boards`, ...), each
registering its handlers on a `Family`; `families.FAMILIES` lists them and the
`Dispatcher` runs them for a `Caller`. Handlers answer with a structured `Reply` that
the terminal (`terminal`) and Slack (`slack`) adapters render their own way.
"""
