"""Bonding, gating and release receipts over the real bumble stack.

A suit that requires bonding pairs (LE Secure Connections, passkey entry)
only in pairing mode, serves its logs only to the bonded gateway on an
encrypted link, and erases a log only for a receipt signed with the bond.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from ble_helpers import RecordingSink, SuitFactory, passkey_of, random_logs
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bumble.pairing import PairingDelegate

from edge_agent.transfer import (
    BondStore,
    NotInPairingModeError,
    PairingError,
    ReleaseRefusedError,
    SuitBond,
    SuitNotBondedError,
    SuitSession,
    UploadReceipt,
    async_find_suits,
    async_pair_suit,
)
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.protocol import (
    CONTROL_POINT_UUID,
    ListLogs,
    ReadLog,
    ReleaseLog,
    ReleaseReceipt,
    ResultCode,
)
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir

pytestmark = pytest.mark.timeout(120)

SCAN_S = 0.3


async def _find(radio: GatewayRadio, name: str) -> BLEDevice:
    suits = await async_find_suits(SCAN_S, backend=radio.scanner_backend)
    matches = [device for device in suits if device.name == name]
    assert matches, f"no suit named {name!r} among {suits}"
    return matches[0]


async def _pair(suit: EmulatedSuit, radio: GatewayRadio, bonds: BondStore) -> str:
    """Hold the suit's button, type its passkey on the gateway, pair."""
    suit.enter_pairing_mode()
    radio.passkey_provider = passkey_of(suit)
    try:
        return await async_pair_suit(
            await _find(radio, suit.serial), radio.client_backend, bonds
        )
    finally:
        radio.passkey_provider = None


def _receipt(log_id: str) -> UploadReceipt:
    return UploadReceipt(
        {"raw_csv": f"raw/rider-1/SN/2026/01/02/{log_id}.csv.gz"},
        {"raw_csv": hashlib.sha256(log_id.encode()).hexdigest()},
    )


async def test_pairing_bonds_and_reconnects_need_no_new_pairing(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink, tmp_path: Path
) -> None:
    logs = random_logs(30, [120_000, 80_000])
    suit = await start_suit("SN000030", logs, require_bond=True)
    bonds = BondStore.for_workdir(tmp_path)

    serial = await _pair(suit, radio, bonds)

    assert serial == "SN000030"
    assert not suit.pairing_mode, "enrolment closes the pairing window"
    assert suit.bonded_gateways == [str(radio.device.static_address)]
    bond = BondStore.for_workdir(tmp_path).get(serial)
    assert bond is not None and len(bond.release_key) == 32
    assert (tmp_path / "ble" / "bonds.json").stat().st_mode & 0o777 == 0o600
    device = await _find(radio, "SN000030")
    for entry_index in range(2):
        async with SuitSession(
            device, backend=radio.client_backend, bond_store=bonds
        ) as session:
            status = await session.async_status()
            assert status.bond_required and not status.pairing_mode
            entry = (await session.async_list_logs())[entry_index]
            await session.async_pull(entry, sink)
            assert sink.read_log(entry.log_id) == logs[entry.log_id]

    assert suit.guard.pairings == 1, "a reconnect must not pair again"
    assert suit.stats.connections == 3
    assert suit.stats.encrypted_links == 3


async def test_bond_survives_a_gateway_restart(
    start_suit: SuitFactory, air: VirtualAir, tmp_path: Path
) -> None:
    suit = await start_suit("SN000031", random_logs(31, [5_000]), require_bond=True)
    keystore = tmp_path / "radio-keys.json"
    bonds = BondStore.for_workdir(tmp_path)
    first = await GatewayRadio.async_create(air, keystore_path=keystore)
    try:
        await _pair(suit, first, bonds)
    finally:
        await first.async_close()

    again = await GatewayRadio.async_create(air, keystore_path=keystore)
    try:
        assert again.device.static_address == first.device.static_address
        async with SuitSession(
            await _find(again, "SN000031"), backend=again.client_backend
        ) as session:
            assert len(await session.async_list_logs()) == 1
    finally:
        await again.async_close()
    assert suit.guard.pairings == 1


async def test_read_list_and_release_are_refused_without_a_bond(
    start_suit: SuitFactory, radio: GatewayRadio
) -> None:
    logs = random_logs(32, [10_000])
    ((log_id, data),) = logs.items()
    sha = hashlib.sha256(data).hexdigest()
    suit = await start_suit("SN000032", logs, require_bond=True)
    device = await _find(radio, "SN000032")

    async with BleakClient(device, backend=radio.client_backend) as client:
        for command in (
            ListLogs(1),
            ReadLog(2, log_id, 0, 0, 236, 64),
            ReleaseLog(3, log_id, sha),
        ):
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(
                    CONTROL_POINT_UUID, command.encode(), response=True
                )
            assert refused.value.code is (
                BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
            )
    async with SuitSession(device, backend=radio.client_backend) as session:
        status = await session.async_status()
        assert status.bond_required and status.stored_logs == 1
        with pytest.raises(SuitNotBondedError, match="bonded, encrypted link"):
            await session.async_list_logs()

    assert suit.stored_log_ids == [log_id]
    assert suit.stats.chunks_sent == 0


async def test_rogue_central_is_refused_beside_a_bonded_gateway(
    start_suit: SuitFactory, radio: GatewayRadio, air: VirtualAir, tmp_path: Path
) -> None:
    logs = random_logs(33, [20_000])
    ((log_id, data),) = logs.items()
    sha = hashlib.sha256(data).hexdigest()
    suit = await start_suit("SN000033", logs, require_bond=True)
    bonds = BondStore.for_workdir(tmp_path / "gateway")
    await _pair(suit, radio, bonds)

    rogue = await GatewayRadio.async_create(air, name="rogue")
    try:
        rogue.passkey_provider = passkey_of(suit)
        device = await _find(rogue, "SN000033")
        async with BleakClient(device, backend=rogue.client_backend) as client:
            with pytest.raises(BleakError, match="pairing"):
                await client.pair()
            forged = ReleaseReceipt.sign(
                bytes(32), log_id, sha, _receipt(log_id).digest()
            )
            with pytest.raises(BleakGATTProtocolError):
                await client.write_gatt_char(
                    CONTROL_POINT_UUID,
                    ReleaseLog(9, log_id, sha, forged).encode(),
                    response=True,
                )
        rogue_bonds = BondStore.for_workdir(tmp_path / "rogue")
        with pytest.raises(NotInPairingModeError):
            await async_pair_suit(device, rogue.client_backend, rogue_bonds)
        assert rogue_bonds.bonds() == []
    finally:
        await rogue.async_close()

    assert suit.guard.pairings_refused >= 1
    assert suit.bonded_gateways == [str(radio.device.static_address)]
    assert suit.stored_log_ids == [log_id]
    async with SuitSession(
        await _find(radio, "SN000033"), backend=radio.client_backend
    ) as session:
        assert [e.log_id for e in await session.async_list_logs()] == [log_id]


@pytest.mark.parametrize("rogue_kind", ["wrong passkey", "just works"])
async def test_rogue_pairing_in_the_window_fails_and_leaves_it_to_the_gateway(
    start_suit: SuitFactory,
    radio: GatewayRadio,
    air: VirtualAir,
    tmp_path: Path,
    rogue_kind: str,
) -> None:
    suit = await start_suit("SN000034", random_logs(34, [1_000]), require_bond=True)
    suit.enter_pairing_mode()
    rogue = await GatewayRadio.async_create(air, name="rogue")
    try:
        if rogue_kind == "just works":
            rogue.io_capability = PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
        else:

            async def wrong_passkey(_address: str) -> int:
                shown = await suit.async_read_passkey()
                assert shown is not None
                return (shown + 1) % 1_000_000

            rogue.passkey_provider = wrong_passkey
        with pytest.raises(PairingError):
            await async_pair_suit(
                await _find(rogue, "SN000034"),
                rogue.client_backend,
                BondStore.for_workdir(tmp_path / "rogue"),
            )
    finally:
        await rogue.async_close()
    assert suit.bonded_gateways == []
    assert suit.pairing_mode, "a failed pairing must not use up the window"

    bonds = BondStore.for_workdir(tmp_path / "gateway")
    radio.passkey_provider = passkey_of(suit)
    await async_pair_suit(await _find(radio, "SN000034"), radio.client_backend, bonds)
    assert suit.bonded_gateways == [str(radio.device.static_address)]


async def test_release_needs_a_receipt_signed_with_the_bond(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink, tmp_path: Path
) -> None:
    logs = random_logs(35, [30_000, 40_000])
    suit = await start_suit("SN000035", logs, require_bond=True)
    bonds = BondStore.for_workdir(tmp_path)
    serial = await _pair(suit, radio, bonds)
    bond = bonds.get(serial)
    assert bond is not None
    forged_bonds = BondStore.for_workdir(tmp_path / "forged")
    forged_bonds.put(SuitBond(serial, bond.address, bytes(32)))
    device = await _find(radio, serial)

    async with SuitSession(
        device, backend=radio.client_backend, bond_store=bonds
    ) as session:
        kept, released = await session.async_list_logs()
        await session.async_pull(released, sink)
        receipt = _receipt(released.log_id)

        with pytest.raises(ReleaseRefusedError) as refused:
            await session.async_release(released.log_id, released.sha256_hex)
        assert refused.value.result is ResultCode.BAD_RECEIPT
        with pytest.raises(ReleaseRefusedError) as refused:
            await session.async_release(
                released.log_id, kept.sha256_hex, receipt=receipt
            )
        assert refused.value.result is ResultCode.SHA_MISMATCH
    async with SuitSession(
        device, backend=radio.client_backend, bond_store=forged_bonds
    ) as forged:
        with pytest.raises(ReleaseRefusedError) as refused:
            await forged.async_release(
                released.log_id, released.sha256_hex, receipt=receipt
            )
        assert refused.value.result is ResultCode.BAD_RECEIPT
    assert suit.erased_log_ids == []

    async with SuitSession(
        device, backend=radio.client_backend, bond_store=bonds
    ) as session:
        await session.async_release(
            released.log_id, released.sha256_hex, receipt=receipt
        )
    assert suit.erased_log_ids == [released.log_id]
    evidence = suit.release_receipts[released.log_id]
    assert evidence.upload_digest_hex == receipt.digest().hex()
    assert evidence.gateway_address == str(radio.device.static_address)


async def test_release_with_a_receipt_needs_a_bond_here(
    start_suit: SuitFactory, radio: GatewayRadio, tmp_path: Path
) -> None:
    logs = random_logs(36, [1_000])
    ((log_id, data),) = logs.items()
    suit = await start_suit("SN000036", logs)
    device = await _find(radio, "SN000036")

    async with SuitSession(
        device, backend=radio.client_backend, bond_store=BondStore(tmp_path / "b")
    ) as session:
        with pytest.raises(SuitNotBondedError, match="no bond in"):
            await session.async_release(
                log_id, hashlib.sha256(data).hexdigest(), receipt=_receipt(log_id)
            )
        with pytest.raises(ReleaseRefusedError, match="no committed object key"):
            await session.async_release(
                log_id, hashlib.sha256(data).hexdigest(), receipt=UploadReceipt({}, {})
            )
    assert suit.stored_log_ids == [log_id]


async def test_open_suit_checks_a_receipt_when_one_is_sent(
    start_suit: SuitFactory, radio: GatewayRadio, tmp_path: Path
) -> None:
    logs = random_logs(37, [2_000, 3_000])
    suit = await start_suit("SN000037", logs)
    bonds = BondStore.for_workdir(tmp_path)
    await _pair(suit, radio, bonds)

    async with SuitSession(
        await _find(radio, "SN000037"), backend=radio.client_backend, bond_store=bonds
    ) as session:
        first, second = await session.async_list_logs()
        await session.async_release(
            first.log_id, first.sha256_hex, receipt=_receipt(first.log_id)
        )
        await session.async_release(second.log_id, second.sha256_hex)
    assert suit.erased_log_ids == [first.log_id, second.log_id]
    assert list(suit.release_receipts) == [first.log_id]


async def test_pairing_mode_is_visible_and_bounded_in_time(
    start_suit: SuitFactory, radio: GatewayRadio
) -> None:
    suit = await start_suit("SN000038", random_logs(38, [100]), require_bond=True)
    with pytest.raises(ValueError, match="pairing window"):
        suit.enter_pairing_mode(0)
    suit.enter_pairing_mode(0.5)

    async with SuitSession(
        await _find(radio, "SN000038"), backend=radio.client_backend
    ) as session:
        assert (await session.async_status()).pairing_mode
        for _attempt in range(200):  # the window closes by itself: wait <= 10 s
            if not suit.pairing_mode:
                break
            await asyncio.sleep(0.05)
        assert not suit.pairing_mode
        assert not (await session.async_status()).pairing_mode


async def test_suit_bonds_survive_a_suit_restart_with_a_bond_file(
    air: VirtualAir, radio: GatewayRadio, tmp_path: Path
) -> None:
    logs = random_logs(39, [2_000])
    bond_file = tmp_path / "suit-bonds.json"
    bonds = BondStore.for_workdir(tmp_path / "gateway")
    first = EmulatedSuit("SN000039", logs, require_bond=True, bond_path=bond_file)
    await first.async_start(air)
    try:
        await _pair(first, radio, bonds)
    finally:
        await first.async_stop()
    assert bond_file.stat().st_mode & 0o777 == 0o600

    again = EmulatedSuit("SN000039", logs, require_bond=True, bond_path=bond_file)
    await again.async_start(air)
    try:
        async with SuitSession(
            await _find(radio, "SN000039"), backend=radio.client_backend
        ) as session:
            assert len(await session.async_list_logs()) == 1
        assert again.guard.pairings == 0
        assert again.bonded_gateways == [str(radio.device.static_address)]
    finally:
        await again.async_stop()


async def test_gateway_pairs_again_after_the_suit_lost_its_bond(
    start_suit: SuitFactory, radio: GatewayRadio, tmp_path: Path
) -> None:
    suit = await start_suit("SN000040", random_logs(40, [500]), require_bond=True)
    bonds = BondStore.for_workdir(tmp_path)
    await _pair(suit, radio, bonds)
    first_key = bonds.get("SN000040")
    suit.forget_bonds()

    device = await _find(radio, "SN000040")
    async with SuitSession(
        device, backend=radio.client_backend, bond_store=bonds
    ) as session:
        assert session.bond == first_key
        with pytest.raises(SuitNotBondedError):
            await session.async_list_logs()

    await _pair(suit, radio, bonds)
    async with SuitSession(
        device, backend=radio.client_backend, bond_store=bonds
    ) as session:
        assert len(await session.async_list_logs()) == 1
        assert session.bond is not None and session.bond != first_key
    assert suit.guard.pairings == 2
