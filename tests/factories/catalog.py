import factory

from deck.models import CfReco, MediaItem, UserGenrePreference

GENRES = ["drama", "comedy", "action", "horror", "scifi"]


class MediaItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MediaItem

    title = factory.Faker("catch_phrase")
    genres = factory.Sequence(lambda n: [GENRES[n % len(GENRES)]])
    year = factory.Sequence(lambda n: 1990 + n % 35)
    popularity = factory.Sequence(lambda n: round(1000 / (n + 1), 3))


class CfRecoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CfReco

    score = 0.5


class UserGenrePreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserGenrePreference

    weight = 1.0
