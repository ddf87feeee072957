"""The ECI emulator: Alibaba Cloud's Elastic Container Instance API (2018-08-08, RPC style) as the SDK speaks it.

Product code behind `vnode eci-emulator` (and later `vnode sandbox --provider eci`). It must never import the
Aliyun SDK: it implements the wire protocol itself, so the SDK can be tested against it.
"""
