package trackingpresenter

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"
)

// messageFiles are the texts the app shows, one YAML file per language.
//
//go:embed messages/*.yaml
var messageFiles embed.FS

// language is a catalog's language.
type language string

const (
	langRU language = "ru" // the default
	langEN language = "en"
)

// languages are the catalog's languages; each has every msgKey.
var languages = []language{langRU, langEN}

// languageOf reads X-Request-Language: "en" or "en-*" (any case) is
// English, anything else (absent included) Russian. Never an error.
func languageOf(header string) language {
	h := strings.ToLower(strings.TrimSpace(header))
	if h == "en" || strings.HasPrefix(h, "en-") {
		return langEN
	}
	return langRU
}

// msgKey names one text of the catalog.
type msgKey string

// The catalog's keys. ".store" variants are for retail and shop orders.
const (
	msgCreatedTitle                 msgKey = "status.created.title"
	msgCreatedDescriptionRestaurant msgKey = "status.created.description.restaurant"
	msgCreatedDescriptionStore      msgKey = "status.created.description.store"
	msgPreparingTitleRestaurant     msgKey = "status.preparing.title.restaurant"
	msgPreparingTitleStore          msgKey = "status.preparing.title.store"
	msgPreparingDescRestaurant      msgKey = "status.preparing.description.restaurant"
	msgPreparingDescStore           msgKey = "status.preparing.description.store"
	msgTakenTitle                   msgKey = "status.taken.title"
	msgTakenDescription             msgKey = "status.taken.description"
	msgArrivedTitle                 msgKey = "status.arrived_to_customer.title"
	msgArrivedDescription           msgKey = "status.arrived_to_customer.description"
	msgDeliveredTitle               msgKey = "status.delivered.title"
	msgDeliveredDescription         msgKey = "status.delivered.description"
	msgCancelledTitle               msgKey = "status.cancelled.title"
	msgCancelledDescription         msgKey = "status.cancelled.description"
	msgCallPlaceRestaurant          msgKey = "action.call_place.restaurant"
	msgCallPlaceStore               msgKey = "action.call_place.store"
	msgCallCourier                  msgKey = "action.call_courier"
	msgContactUsTitle               msgKey = "picker.contact_us.title"
	msgContactUsDescription         msgKey = "picker.contact_us.description"
	msgContactUsAction              msgKey = "picker.contact_us.action"
	msgCallPickerTitle              msgKey = "picker.call.title"
	msgCallPickerDescription        msgKey = "picker.call.description"
	msgCallPickerAction             msgKey = "picker.call.action"
	msgPayingTitle                  msgKey = "picker.paying.title"
	msgPayingDescription            msgKey = "picker.paying.description"
	msgForgotItemBanner             msgKey = "banner.retail_forgot_item.text"
)

// msgKeys lists every key the code uses.
var msgKeys = []msgKey{
	msgCreatedTitle, msgCreatedDescriptionRestaurant, msgCreatedDescriptionStore,
	msgPreparingTitleRestaurant, msgPreparingTitleStore, msgPreparingDescRestaurant, msgPreparingDescStore,
	msgTakenTitle, msgTakenDescription, msgArrivedTitle, msgArrivedDescription,
	msgDeliveredTitle, msgDeliveredDescription, msgCancelledTitle, msgCancelledDescription,
	msgCallPlaceRestaurant, msgCallPlaceStore, msgCallCourier,
	msgContactUsTitle, msgContactUsDescription, msgContactUsAction,
	msgCallPickerTitle, msgCallPickerDescription, msgCallPickerAction,
	msgPayingTitle, msgPayingDescription, msgForgotItemBanner,
}

// catalog holds every text in every language.
type catalog map[language]map[msgKey]string

// text returns key in lang; loadCatalog guaranteed it exists.
func (c catalog) text(lang language, key msgKey) string { return c[lang][key] }

// loadCatalog reads messages/<lang>.yaml for every language and refuses a
// missing or empty text and a key the code does not know (most likely a
// typo), so a broken catalog fails start-up, not a request.
func loadCatalog(fsys fs.FS) (catalog, error) {
	c := make(catalog, len(languages))
	var errs []error
	for _, lang := range languages {
		name := "messages/" + string(lang) + ".yaml"
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("message catalog %s: %w", name, err))
			continue
		}
		var raw map[string]string
		if err := yaml.Unmarshal(b, &raw); err != nil {
			errs = append(errs, fmt.Errorf("message catalog %s: %w", name, err))
			continue
		}
		texts := make(map[msgKey]string, len(msgKeys))
		for _, k := range msgKeys {
			v := strings.TrimSpace(raw[string(k)])
			if v == "" {
				errs = append(errs, fmt.Errorf("message catalog %s: %s is missing or empty", name, k))
			}
			texts[k] = v
			delete(raw, string(k))
		}
		for k := range raw {
			errs = append(errs, fmt.Errorf("message catalog %s: unknown key %s", name, k))
		}
		c[lang] = texts
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}
