"""Every JSON example of the shared-features page, rebuilt through ``df.cm.build``.

The examples are copied from ``cm-business-messaging-shared-features.txt``; each
test builds the same message from a recipient frame and compares the request
document structurally (key order does not matter, values and nesting do).
"""

from __future__ import annotations

import pandas as pd
import pytest

import cmframe  # noqa: F401  (registers df.cm)

TOKEN = "00000000-0000-0000-0000-000000000000"


def _ci(obj):
    """Authentication keys differ in case on the page (productToken / producttoken)."""
    if isinstance(obj, dict):
        return {k.lower(): _ci(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_ci(v) for v in obj]
    return obj


def only_request(plan, **kwargs):
    docs = list(plan.cm.requests(token=TOKEN, **kwargs))
    assert len(docs) == 1
    return docs[0]


def test_single_viber_message():
    page = {
        "messages": {
            "authentication": {"productToken": TOKEN},
            "msg": [
                {
                    "body": {"type": "auto", "content": "Message Text"},
                    "to": [{"number": "00316012345678"}],
                    "from": "TestSender",
                    "allowedChannels": ["Viber"],
                }
            ],
        }
    }
    df = pd.DataFrame({"phone": ["+31 6012345678"]})
    # The page's number is not in a Dutch number range; "possible" checks code and length only.
    plan = df.cm.build(
        to="phone", body="Message Text", sender="TestSender", channels=["Viber"], number_check="possible"
    )
    assert only_request(plan) == page
    strict = df.cm.build(to="phone", body="Message Text", sender="TestSender", channels=["Viber"])
    assert strict["error_code"].iloc[0] == 303


def test_batch_two_messages_two_numbers_each():
    page = {
        "messages": {
            "authentication": {"producttoken": TOKEN},
            "msg": [
                {
                    "allowedChannels": ["Viber"],
                    "from": "SenderName",
                    "to": [{"number": "00447911123456"}, {"number": "00447911123457"}],
                    "body": {"type": "auto", "content": "Test message"},
                },
                {
                    "allowedChannels": ["SMS"],
                    "from": "OtherSender",
                    "to": [{"number": "00447911123458"}, {"number": "00447911123459"}],
                    "body": {"type": "auto", "content": "Other Test message"},
                },
            ],
        }
    }
    df = pd.DataFrame(
        {
            "phone": ["07911 123456", "07911 123457", "07911 123458", "07911 123459"],
            "text": ["Test message", "Test message", "Other Test message", "Other Test message"],
            "from": ["SenderName", "SenderName", "OtherSender", "OtherSender"],
            "channel": ["Viber", "Viber", "SMS", "SMS"],
        }
    )
    plan = df.cm.build(to="phone", region="GB", body="{text}", sender="{from}", channels="{channel}")
    doc = only_request(plan, merge_identical=True)
    assert _ci(doc) == _ci(page)
    # without merging: one msg per recipient, same content
    flat = only_request(plan)
    assert len(flat["messages"]["msg"]) == 4
    assert [m["to"] for m in flat["messages"]["msg"]] == [
        [t] for m in page["messages"]["msg"] for t in m["to"]
    ]


def test_reference_and_custom_groupings():
    page_msg = {
        "allowedChannels": ["SMS"],
        "from": "SenderName",
        "to": [{"number": "00447911123456"}],
        "body": {"type": "auto", "content": "Test message"},
        "reference": "your_reference",
        "customGrouping": "Campaign ABC",
        "customGrouping2": "Department XYZ",
        "customGrouping3": "Source 123",
    }
    df = pd.DataFrame({"phone": ["+447911123456"], "campaign": ["Campaign ABC"], "dept": ["XYZ"]})
    plan = df.cm.build(
        to="phone",
        body="Test message",
        sender="SenderName",
        channels="SMS",
        reference="your_reference",
        custom_grouping="{campaign}",
        custom_grouping2="Department {dept}",
        custom_grouping3=pd.Series(["Source 123"], index=df.index),
    )
    assert only_request(plan)["messages"]["msg"] == [page_msg]


def test_validity_absolute_is_sent_verbatim():
    page_msg = {
        "allowedChannels": ["SMS"],
        "from": "SenderName",
        "to": [{"number": "00447911123456"}],
        "body": {"type": "auto", "content": "Test message"},
        "validity": "2017-04-20 11:50 GMT",
    }
    df = pd.DataFrame({"phone": ["00447911123456"]})
    plan = df.cm.build(
        to="phone", body="Test message", sender="SenderName", channels=["SMS"], validity="2017-04-20 11:50 GMT"
    )
    assert only_request(plan)["messages"]["msg"] == [page_msg]


@pytest.mark.parametrize("text", ["2017-04-20 11:50:05 GMT", "2017-04-20 11:50:05+8", "2017-04-20 11:55:05-07:00", "2h", "30m"])
def test_validity_formats_of_the_page(text):
    df = pd.DataFrame({"phone": ["00447911123456"]})
    plan = df.cm.build(to="phone", body="x", sender="S", validity=text)
    assert plan["error_code"].isna().all()
    assert only_request(plan)["messages"]["msg"][0]["validity"] == text


def test_rich_content_text_and_media():
    page_msg = {
        "from": "CM.com",
        "to": [{"number": "0031612345678"}],
        "body": {"type": "auto", "content": "fallback content"},
        "allowedChannels": ["WhatsApp"],
        "richContent": {
            "conversation": [
                {"text": "A rich content text message"},
                {
                    "media": {
                        "mediaName": "conversational-commerce",
                        "mediaUri": "https://www.cm.com/cdn/web/nl-nl/blog/conversational-commerce.jpg",
                        "mimeType": "image/jpeg",
                    }
                },
            ]
        },
    }
    df = pd.DataFrame(
        {
            "phone": ["06 1234 5678"],
            "image": ["https://www.cm.com/cdn/web/nl-nl/blog/conversational-commerce.jpg"],
        }
    )
    plan = df.cm.build(
        to="phone",
        region="NL",
        body="fallback content",
        sender="CM.com",
        channels=["WhatsApp"],
        conversation=[
            {"text": "A rich content text message"},
            {"media": {"mediaName": "conversational-commerce", "mediaUri": "{image}", "mimeType": "image/jpeg"}},
        ],
    )
    assert only_request(plan)["messages"]["msg"] == [page_msg]


SUGGESTIONS = {
    "OpenUrl": [
        {
            "action": "OpenUrl",
            "url": "market://details?id=cm.com",
            "label": "Install app",
            "postbackdata": "Data sent back in an MO",
        },
        {
            "action": "OpenUrl",
            "url": "https://docs.cmtelecom.com/en/api/business-messaging-api/1.0/index/",
            "label": "SMS documentation",
            "postbackdata": "Data sent back in an MO",
        },
    ],
    "CreateCalendarEvent": [
        {
            "action": "CreateCalendarEvent",
            "label": "Add to calendar",
            "calendar": {
                "startTime": "2018-02-05T00:00:00",
                "endTime": "2018-02-08T00:00:00",
                "description": "Calendar demo",
                "title": "Demo",
            },
        }
    ],
    "Dial": [
        {
            "action": "Dial",
            "label": "Call us",
            "postbackdata": "Data sent back in an MO",
            "dial": {"PhoneNumber": "+310612345"},
        }
    ],
    "ViewLocation": [
        {
            "action": "viewLocation",
            "viewLocation": {"latitude": "51.603802", "longitude": "4.770821", "label": "CM HQ"},
            "label": "Open in maps",
        }
    ],
    "Reply": [
        {
            "action": "Reply",
            "label": "Make an appointment",
            "description": "Doctor",
            "postbackdata": "Data sent back in an MO",
            "media": {
                "mediaName": "conversational-commerce",
                "mediaUri": "https://www.cm.com/cdn/web/nl-nl/blog/conversational-commerce.jpg",
                "mimeType": "image/jpeg",
            },
        }
    ],
    "Login": [{"action": "Login", "url": "https://www.example.com/authorize"}],
    "Logout": [{"action": "Logout"}],
    "ViewProduct": [{"action": "ViewProduct", "product": {"id": "FB_tshirt_001"}}],
}


@pytest.mark.parametrize("action", list(SUGGESTIONS))
def test_each_suggestion_of_the_page(action):
    df = pd.DataFrame({"phone": ["0031612345678"]})
    plan = df.cm.build(
        to="phone",
        body="fallback",
        sender="CM.com",
        channels=["RCS"],
        conversation=[{"text": "Pick one"}],
        suggestions=SUGGESTIONS[action],
    )
    assert plan["error_code"].isna().all(), plan["error"].iloc[0]
    rich = only_request(plan)["messages"]["msg"][0]["richContent"]
    assert rich == {"conversation": [{"text": "Pick one"}], "suggestions": SUGGESTIONS[action]}


def test_suggestion_templates_per_row():
    df = pd.DataFrame(
        {"phone": ["0031612345678", "0031612345679"], "shop": ["https://a.example/1", ""]}
    )
    plan = df.cm.build(
        to="phone",
        body="fallback",
        sender="CM.com",
        conversation=[{"text": "Hi"}],
        suggestions=[{"action": "OpenUrl", "label": "Shop", "url": "{shop}"}],
    )
    assert pd.isna(plan["error_code"].iloc[0])
    assert plan["error_code"].iloc[1] == 305
    assert "suggestions[0].url" in plan["error"].iloc[1]
    sent = only_request(plan)["messages"]["msg"]
    assert len(sent) == 1
    assert sent[0]["richContent"]["suggestions"][0]["url"] == "https://a.example/1"
