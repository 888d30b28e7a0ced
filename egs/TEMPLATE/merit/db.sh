# Where each corpus lives on this machine. One shared file, linked into every
# recipe; a recipe's local/data.sh reads its own variable and says which one to
# fill when it is empty. egs/TEMPLATE/merit/setup.sh adds a line per new corpus.
# Corpora that ship with the repository need no entry. A variable already set in
# the environment wins over the value here.

MSP_PODCAST=${MSP_PODCAST:-}          # MSP-Podcast release root (1.11 or later): Audios/, Labels/

# Noise corpora named in egs/TEMPLATE/merit/scripts/prep_noise.sh (the paper used the
# first three: CRSS-4ENGLISH-14 and Freesound seen, DNS Challenge noise unseen)
CRSS_NOISE=${CRSS_NOISE:-}            # CRSS-4ENGLISH-14 noise: a folder of audio files
FREESOUND_NOISE=${FREESOUND_NOISE:-}  # Freesound clips: FSD50K root, or a folder of audio files
DNS_NOISE=${DNS_NOISE:-}              # DNS Challenge: release root or its noise folder
MUSAN=${MUSAN:-}                      # MUSAN root (its noise/ part is used)
