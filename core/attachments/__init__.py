"""Attachments both ways (issue 10, item 4).

`links`: signed, expiring download links to one stored attachment of one tenant (pure).
`serving`: how a stored file is served: a type sniffed from its bytes, never markup inline (pure).
`files`: the files of a message: size limits (pure) and attaching stored blobs to a message.
"""
