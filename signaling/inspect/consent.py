"""What the buyer agrees to before anything is recorded, in the case's language.

The text names what is recorded and how long it is kept; the case stores the exact text shown and
its version, so the evidence bundle proves what the buyer agreed to.
"""

from __future__ import annotations

from vitrine.core.wire.inspect import CONSENT_VERSION

CONSENT_TEXT = {
    "en": (
        "{shop} asks to see your item over video. If you agree, this session is recorded: the video and "
        "sound from your camera, photos the seller takes, the seller's marks and notes, and the chat. The "
        "recording is kept for {days} days as evidence for your return or dispute, then deleted. You can ask "
        "{shop} to erase it sooner. Nothing is recorded until you agree, and you can pause or leave at any time."
    ),
    "zh": (
        "{shop} 希望通过视频查看您的商品。如果您同意，本次会话将被录制：您摄像头的画面和声音、卖家拍摄的照片、"
        "卖家的标注和备注以及聊天记录。录制内容将作为您退货或争议的证据保存 {days} 天，之后删除。"
        "您可以要求 {shop} 提前删除。在您同意之前不会录制任何内容，您可以随时暂停或离开。"
    ),
    "es": (
        "{shop} quiere ver tu artículo por vídeo. Si aceptas, esta sesión se graba: el vídeo y el sonido de tu "
        "cámara, las fotos que tome el vendedor, sus marcas y notas, y el chat. La grabación se conserva {days} "
        "días como prueba para tu devolución o reclamación y después se borra. Puedes pedir a {shop} que la borre "
        "antes. No se graba nada hasta que aceptes, y puedes pausar o salir en cualquier momento."
    ),
    "fr": (
        "{shop} souhaite voir votre article en vidéo. Si vous acceptez, cette session est enregistrée : la vidéo "
        "et le son de votre caméra, les photos prises par le vendeur, ses annotations et notes, et la discussion. "
        "L'enregistrement est conservé {days} jours comme preuve pour votre retour ou litige, puis supprimé. Vous "
        "pouvez demander à {shop} de le supprimer plus tôt. Rien n'est enregistré avant votre accord, et vous "
        "pouvez mettre en pause ou partir à tout moment."
    ),
    "de": (
        "{shop} möchte Ihren Artikel per Video ansehen. Wenn Sie zustimmen, wird diese Sitzung aufgezeichnet: "
        "Bild und Ton Ihrer Kamera, Fotos des Verkäufers, seine Markierungen und Notizen sowie der Chat. Die "
        "Aufzeichnung wird {days} Tage als Nachweis für Ihre Rücksendung oder Reklamation aufbewahrt und dann "
        "gelöscht. Sie können {shop} bitten, sie früher zu löschen. Vor Ihrer Zustimmung wird nichts "
        "aufgezeichnet, und Sie können jederzeit pausieren oder gehen."
    ),
}


def consent_text(language: str, shop_name: str, retention_days: int) -> tuple[str, int]:
    """The text to show (in the case's language, English when it has none) and its version."""
    template = CONSENT_TEXT.get(language.split("-")[0].lower(), CONSENT_TEXT["en"])
    return template.format(shop=shop_name, days=retention_days), CONSENT_VERSION
