# Where each corpus lives on this machine. One shared file, linked into every
# recipe; a recipe's local/data.sh reads its own variable and says which one to
# fill when it is empty. egs/TEMPLATE/merit/setup.sh adds a line per new corpus.
# Corpora that ship with the repository need no entry.

MSP_PODCAST=      # MSP-Podcast release root (1.11 or later): Audios/, Labels/
