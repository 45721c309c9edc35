# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP: the pjsua2 B2BUA in :mod:`.pj` (the only pjsua2 importer) and SIP text work without a SIP stack:
request checks before pjsip acts (:mod:`.sipcheck`), the agent leg's caller identity (:mod:`.identity`),
ending a dead worker's dialogs (:mod:`.orphans`) and RTP peer locking (:mod:`.rtplock`).
"""
