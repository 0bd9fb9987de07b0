"""Addresses in one spelling. (Scaffold: the addresses engineer extends this module; the
signature of `other_municipality` is used by the household importer and stays.)"""

import unicodedata

PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)


def other_municipality(address: str, *, prefecture: str, name: str) -> str | None:
    """The prefecture or prefecture+city an address names when that is not this municipality
    (`prefecture`, `name` as Municipality holds them), or None: the address names this
    municipality, or names no prefecture at all (a list that starts at the 大字 is normal)."""
    text = unicodedata.normalize("NFKC", address).strip()
    named = next((p for p in PREFECTURES if text.startswith(p)), None)
    if named is None:
        return None
    if named != prefecture:
        return named
    rest = text[len(named):]
    if rest.startswith(name):
        return None
    gun = rest.find("郡")  # 東伯郡北栄町: a town or village is named after its 郡
    if 0 < gun <= 5 and rest[gun + 1 :].startswith(name):
        return None
    for suffix in ("市", "町", "村"):
        end = rest.find(suffix)
        if 0 < end <= 8:
            return named + rest[: end + 1]
    return named
