# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP: the pjsua2 B2BUA in :mod:`.pj` (the only pjsua2 importer) and SIP work without a SIP stack: the
bridge's state machine that the B2BUA drives (:mod:`.bridge`: states, legs, hold relays), request checks
before pjsip acts (:mod:`.sipcheck`), the agent leg's caller identity (:mod:`.identity`), ending a
dead worker's dialogs (:mod:`.orphans`) and RTP peer locking (:mod:`.rtplock`).
"""
