# Persistence on the board's filesystem (littlefs): the configuration, a
# small state record and the event log. Every file carries a CRC; every
# update is either complete or not there (write a new copy, then rename,
# or ping-pong between two slots), so a power cut at any point leaves the
# old or the new content, never a mix.
